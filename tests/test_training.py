"""Tasks load, small models learn, the KL weight stays put, and bad input fails clearly."""

import gzip
import shutil

import pytest
import torch

import bnn_impls as B
from bnn_impls.mnist import FILES, DataError, load_mnist


def _train(task, data, sizes, impl, kl, steps, lr, samples=2, batch=64, seed=0):
    spec = B.TASK_SPECS[task]
    model = B.BayesianMLP(sizes, generator=torch.Generator().manual_seed(seed))
    elbo = B.ElboSpec(spec.likelihood, kl, B.make_prior("gaussian"), data.n_train)
    gen = torch.Generator().manual_seed(seed)
    step = B.make_train_step(model, B.get_implementation(impl), elbo, B.make_optimizer(model, lr),
                             samples=samples, generator=gen)
    batches = B.endless_batches(data, batch, gen)
    return [step(*next(batches)) for _ in range(steps)]


def test_regression_data_is_the_reports_curve_and_seeded():
    data = B.load_dataset("regression", "cpu", torch.float32, seed=3)
    assert data.x_train.shape == (1024, 1) and data.y_train.shape == (1024, 1)
    assert 0 <= data.x_train.min() and data.x_train.max() <= 0.5
    again = B.load_dataset("regression", "cpu", torch.float32, seed=3)
    assert torch.equal(data.y_train, again.y_train)
    assert not torch.equal(data.y_train, B.load_dataset("regression", "cpu", torch.float32, seed=4).y_train)
    x = data.x_train
    residual = data.y_train - (x + 0.3 * torch.sin(2 * torch.pi * x) + 0.3 * torch.sin(4 * torch.pi * x))
    # Noise of scale 0.02 enters inside the sines too, amplified by their slope (up to ~5.7).
    assert residual.abs().median() < 0.05 and residual.abs().max() < 0.6
    assert residual.std() > 0.01  # and it is there: not the noiseless curve


@pytest.mark.parametrize("impl", ["sequential", "vmap", "vmap_lrt"])
def test_a_tiny_regression_model_learns(impl):
    data = B.load_dataset("regression", "cpu", torch.float32)
    terms = _train("regression", data, (1, 32, 32, 1), impl, B.default_kl(impl), steps=60, lr=1e-2)
    first = torch.stack([t.loss for t in terms[:10]]).mean()
    last = torch.stack([t.loss for t in terms[-10:]]).mean()
    assert last < 0.9 * first


def test_mnist_loads_with_the_documented_counts(mnist_data_dir):
    arrays = load_mnist(mnist_data_dir, allow_download=False)
    assert arrays.train_images.shape == (60000, 28, 28) and arrays.test_images.shape == (10000, 28, 28)
    counts = torch.bincount(torch.from_numpy(arrays.train_labels.astype("int64"))).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    data = B.load_dataset("mnist", "cpu", torch.float32, data_dir=mnist_data_dir)
    assert data.x_train.shape == (60000, 784) and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


@pytest.mark.parametrize("impl", ["vmap", "vmap_lrt"])
def test_a_tiny_mnist_model_learns(mnist_data_dir, impl):
    data = B.load_dataset("mnist", "cpu", torch.float32, data_dir=mnist_data_dir)
    # A small posterior spread so the likelihood, not the KL, dominates the first steps.
    terms = _train("mnist", data, (784, 32, 10), impl, B.default_kl(impl), steps=40, lr=3e-3, batch=128)
    first = torch.stack([t.nll for t in terms[:5]]).mean()
    last = torch.stack([t.nll for t in terms[-5:]]).mean()
    assert last < 0.7 * first


def test_kl_weight_is_one_over_n_on_every_step():
    data = B.load_dataset("regression", "cpu", torch.float32)
    terms = _train("regression", data, (1, 8, 1), "vmap", "sample", steps=300, lr=1e-3, batch=32)
    for t in terms:
        assert t.kl_weight == 1 / 1024
        torch.testing.assert_close(t.loss, t.nll + t.kl / 1024)
    assert terms[-1].kl > 0  # the KL term is still there after hundreds of batches


def test_same_seed_same_steps_different_seed_different_steps():
    data = B.load_dataset("regression", "cpu", torch.float32)
    def run(seed):
        return torch.stack([t.loss for t in _train("regression", data, (1, 8, 1), "vmap", "sample", 5, 1e-3,
                                                   seed=seed)])
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


# -- bad input --------------------------------------------------------------------------------------


def _spec(kl="sample", prior="gaussian"):
    return B.ElboSpec(B.GaussianLikelihood(), kl, B.make_prior(prior), n_train=10)


@pytest.mark.parametrize("samples", [0, -1])
def test_non_positive_samples_is_a_clear_error(samples):
    model = B.BayesianMLP((1, 4, 1))
    with pytest.raises(B.BnnConfigError, match="samples must be a positive integer"):
        B.get_implementation("vmap").loss(model, torch.zeros(2, 1), torch.zeros(2, 1), samples=samples, spec=_spec())


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: B.get_implementation("vmapp"),
         "unknown implementation 'vmapp': choose one of sequential, vmap, vmap_lrt"),
        (lambda: B.make_prior("laplace"), "unknown prior 'laplace'"),
        (lambda: B.load_dataset("cifar", "cpu", torch.float32), "unknown task 'cifar'"),
        (lambda: B.check_combination("vmap", "exact", "gaussian"), "unknown KL estimator 'exact'"),
        (lambda: B.check_combination("vmap", "closed", "mixture"), "needs the gaussian prior"),
        (lambda: B.check_combination("vmap", "repar", "mixture"), "needs the gaussian prior"),
        (lambda: B.check_combination("vmap_lrt", "sample", "gaussian"),
         "needs sampled weights.*closed, mc, repar, repar_exact"),
    ],
)
def test_bad_names_and_combinations_raise_one_line_errors(call, match):
    with pytest.raises(B.BnnConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_wrong_combination_is_refused_by_the_implementation_itself():
    model = B.BayesianMLP((1, 4, 1))
    with pytest.raises(B.BnnConfigError, match="needs sampled weights"):
        B.get_implementation("vmap_lrt").loss(model, torch.zeros(2, 1), torch.zeros(2, 1),
                                              samples=1, spec=_spec("sample"))
    with pytest.raises(B.BnnConfigError, match="needs the gaussian prior"):
        B.get_implementation("vmap").loss(model, torch.zeros(2, 1), torch.zeros(2, 1),
                                          samples=1, spec=_spec("closed", "mixture"))


def test_missing_mnist_names_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"MNIST not found in .*MNIST/raw.*--data-dir") as info:
        load_mnist(str(tmp_path), allow_download=False)
    assert "\n" not in str(info.value)


def _copy_mnist(src, dst):
    raw = dst / "MNIST" / "raw"
    shutil.copytree(src + "/MNIST/raw", raw)
    return raw


def test_truncated_mnist_file_is_reported_as_corrupt(mnist_data_dir, tmp_path):
    raw = _copy_mnist(mnist_data_dir, tmp_path)
    victim = next(raw.glob("train-labels*"))
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DataError, match="corrupt.*download again"):
        load_mnist(str(tmp_path), allow_download=False)


def test_altered_mnist_bytes_fail_the_checksum(mnist_data_dir, tmp_path):
    raw = _copy_mnist(mnist_data_dir, tmp_path)
    victim = raw / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(victim.read_bytes()))
    data[100] ^= 1
    victim.unlink()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(data))  # plain (uncompressed) files are read too
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_mnist(str(tmp_path), allow_download=False)
    assert set(FILES) == {p.name.removesuffix(".gz") for p in raw.iterdir()}
