"""CIFAR-10 in torchvision's on-disk layout (ROOT/cifar-10-batches-py/), without torchvision.

Looked for where MNIST is (`--data-dir`, then BNN_BENCH_DATA, then the per-user cache). Every
batch file is checked against the md5 that torchvision lists for it (torchvision.datasets.CIFAR10)
before it is unpickled; the archive is downloaded and checked the same way where the internet is
reachable. The files are Python pickles, which is why nothing is unpickled before its checksum.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from bnn_impls.mnist import DATA_ENV, DataError, candidate_roots, find_or_download

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
#: file -> md5, as torchvision's CIFAR10 lists them.
TRAIN_FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
}
TEST_FILES = {"test_batch": "40351d587109b95175f43aff81a1287e"}
FILES = {**TRAIN_FILES, **TEST_FILES}


@dataclass(frozen=True)
class CifarArrays:
    train_images: np.ndarray  # (50000, 3, 32, 32) uint8
    train_labels: np.ndarray  # (50000,) int64
    test_images: np.ndarray  # (10000, 3, 32, 32)
    test_labels: np.ndarray


def locate(data_dir: Optional[str] = None) -> Optional[Path]:
    for root in candidate_roots(data_dir):
        if all((root / FOLDER / name).is_file() for name in FILES):
            return root
    return None


def _not_found_message(data_dir: Optional[str]) -> str:
    where = " or ".join(str(r / FOLDER) for r in candidate_roots(data_dir))
    return (f"CIFAR-10 not found in {where}: extract {URL} into one of those folders' parent (it holds "
            f"{FOLDER}/), pass --data-dir DIR or set {DATA_ENV}; download needs internet access; "
            "for timing and memory studies without it use --data synthetic")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(root: Path, timeout: float = 60.0) -> None:
    """Fetch and check the archive, then extract only the expected files into root/cifar-10-batches-py."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        try:
            with urllib.request.urlopen(URL, timeout=timeout) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except (OSError, ValueError) as e:
            raise DataError(f"could not download {URL}: {e}") from None
        if _md5(archive) != ARCHIVE_MD5:
            raise DataError(f"{URL} downloaded with a wrong md5: try again, or extract a good copy by hand")
        with tarfile.open(archive, "r:gz") as tar:
            wanted = [m for m in tar.getmembers() if m.isfile() and Path(m.name).parent.name == FOLDER
                      and Path(m.name).name in FILES]
            tar.extractall(tmp, members=wanted, filter="data")
        (root / FOLDER).mkdir(exist_ok=True)
        for name in FILES:
            os.replace(Path(tmp) / FOLDER / name, root / FOLDER / name)


def ensure_available(data_dir: Optional[str] = None, *, allow_download: bool = True) -> Path:
    return find_or_download(data_dir, allow_download, locate=locate, download=download, not_found=_not_found_message)


def _read_batch(path: Path, md5: str) -> tuple[np.ndarray, np.ndarray]:
    if _md5(path) != md5:
        raise DataError(f"CIFAR-10 file {path} is corrupt (md5 mismatch): "
                        "delete it and download again or copy a good one")
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")  # checksum verified above: the file is the published one
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    return images, labels


def verify(root: Path) -> None:
    """DataError naming the file unless every batch under `root` has its published md5."""
    for name, md5 in {**TRAIN_FILES, **TEST_FILES}.items():
        path = root / FOLDER / name
        if _md5(path) != md5:
            raise DataError(f"CIFAR-10 file {path} is corrupt (md5 mismatch): "
                            "delete it and download again or copy a good one")


def load_cifar10(data_dir: Optional[str] = None, *, allow_download: bool = True) -> CifarArrays:
    root = ensure_available(data_dir, allow_download=allow_download) / FOLDER
    train = [_read_batch(root / name, md5) for name, md5 in TRAIN_FILES.items()]
    test_images, test_labels = _read_batch(root / "test_batch", TEST_FILES["test_batch"])
    return CifarArrays(np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]),
                       test_images, test_labels)
