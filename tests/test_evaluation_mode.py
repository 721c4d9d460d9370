"""Quality evaluation runs our models in eval mode: BatchNorm uses its running statistics and never
updates them, so a test example's prediction does not depend on its evaluation chunk."""

import pytest
import torch
from torch import nn

import bnn_impls as B
from bench.quality.evaluate import evaluate_classification, evaluation_mode


def _bn_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    model = B.bayesify(net, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # running statistics far from any batch's, so using batch statistics shows
        for name, b in model.buffer_dict().items():
            if name.endswith("running_mean"):
                b.fill_(3.0)
            elif name.endswith("running_var"):
                b.fill_(9.0)
    return model


@pytest.mark.parametrize("impl", ["sequential", "vmap", "vmap_lrt", "vmap_flipout"])
def test_evaluation_never_updates_batchnorm_and_ignores_the_chunk(impl):
    model = _bn_net()
    implementation = B.get_implementation(impl)
    predict = evaluation_mode(lambda x, s, g: implementation.predict(model, x, samples=s, generator=g), model)
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    before = {k: v.clone() for k, v in model.buffer_dict().items()}
    with torch.no_grad():
        together = predict(x, 1, torch.Generator().manual_seed(3))
    for k, v in model.buffer_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.training  # the mode is put back
    model.eval()
    with torch.no_grad():
        want = implementation.predict(model, x, samples=1, generator=torch.Generator().manual_seed(3))
    model.train()
    torch.testing.assert_close(together, want)
    if impl in ("sequential", "vmap"):  # one weight draw for the whole batch: the chunk cannot matter
        with torch.no_grad():
            alone = predict(x[:2], 1, torch.Generator().manual_seed(3))
        torch.testing.assert_close(alone, together[:, :2])


def test_without_eval_mode_the_batch_statistics_would_be_used():
    """The control: in training mode BatchNorm normalizes with the chunk's statistics and writes them,
    so the test above can fail."""
    model = _bn_net()
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    impl = B.get_implementation("vmap")
    with torch.no_grad():
        train_mode = impl.predict(model, x, samples=1, generator=torch.Generator().manual_seed(3))
    moved = [k for k, v in model.buffer_dict().items() if k.endswith("running_mean") and not torch.all(v == 3.0)]
    assert moved
    fresh = _bn_net()
    eval_pred = evaluation_mode(lambda x, s, g: impl.predict(fresh, x, samples=s, generator=g), fresh)
    with torch.no_grad():
        assert not torch.allclose(train_mode, eval_pred(x, 1, torch.Generator().manual_seed(3)))


def test_evaluate_classification_accepts_the_wrapped_predictor():
    model = _bn_net()
    impl = B.get_implementation("vmap")
    predict = evaluation_mode(lambda x, s, g: impl.predict(model, x, samples=s, generator=g), model)
    x = torch.randn(10, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    y = torch.arange(10) % 4
    out = evaluate_classification(predict, x, y, 2, torch.Generator().manual_seed(5), eval_rows=6)
    assert 0 <= out["test_error"] <= 1
