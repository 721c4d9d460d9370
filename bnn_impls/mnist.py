"""MNIST from its idx files, in torchvision's on-disk layout (ROOT/MNIST/raw/), without torchvision.

Where the data is looked for, in order: an explicit directory (the `--data-dir` flag), the
environment variable BNN_BENCH_DATA, then a per-user cache directory. Missing files are
downloaded from the standard mirrors where the internet is reachable; every file is checked
against the sha256 of its uncompressed bytes, so recompressed copies are accepted too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

DATA_ENV = "BNN_BENCH_DATA"
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")

#: name -> (sha256 of the uncompressed file, idx magic number, expected shape)
FILES = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 2051,
                                (60000, 28, 28)),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 2049, (60000,)),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 2051,
                               (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 2049, (10000,)),
}


class DataError(RuntimeError):
    """A data set is missing or corrupt; the message is one line naming the fix."""


@dataclass(frozen=True)
class MnistArrays:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray
    test_labels: np.ndarray


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bnn-bench"


def candidate_roots(data_dir: Optional[str] = None) -> list[Path]:
    if data_dir:
        return [Path(data_dir)]
    roots = []
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]))
    roots.append(default_cache_root())
    return roots


def _find(root: Path, name: str) -> Optional[Path]:
    raw = root / "MNIST" / "raw"
    for candidate in (raw / name, raw / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def locate(data_dir: Optional[str] = None) -> Optional[Path]:
    """The first root that holds all four files (plain or gzip), or None."""
    for root in candidate_roots(data_dir):
        if all(_find(root, name) for name in FILES):
            return root
    return None


def _not_found_message(data_dir: Optional[str]) -> str:
    where = " or ".join(str(r / "MNIST" / "raw") for r in candidate_roots(data_dir))
    return (
        f"MNIST not found in {where}: put the four *-ubyte(.gz) files there, pass --data-dir DIR "
        f"(a folder holding MNIST/raw/) or set {DATA_ENV}; download needs internet access"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"MNIST file {path} is corrupt ({e}): "
                        "delete it and download again or copy a good one") from None


def parse_idx(data: bytes, name: str, path: Path) -> np.ndarray:
    """Decode an idx file after checking its checksum, magic number and shape."""
    sha, magic, shape = FILES[name]
    if hashlib.sha256(data).hexdigest() != sha:
        raise DataError(f"MNIST file {path} is corrupt (sha256 mismatch): "
                        "delete it and download again or copy a good one")
    got_magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if got_magic != magic or dims != shape:
        raise DataError(f"MNIST file {path} has an unexpected header (magic {got_magic}, shape {dims}): replace it")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def download(root: Path, timeout: float = 30.0) -> None:
    """Fetch the missing files into root/MNIST/raw from the first mirror that answers."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, (sha, _, _) in FILES.items():
        if _find(root, name):
            continue
        errors = []
        for mirror in MIRRORS:
            url = mirror + name + ".gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response, tempfile.NamedTemporaryFile(
                    dir=raw, delete=False
                ) as tmp:
                    shutil.copyfileobj(response, tmp)
                blob = Path(tmp.name)
                if hashlib.sha256(gzip.decompress(blob.read_bytes())).hexdigest() != sha:
                    blob.unlink()
                    errors.append(f"{url}: checksum mismatch")
                    continue
                os.replace(blob, raw / (name + ".gz"))
                break
            except (OSError, ValueError, EOFError) as e:
                errors.append(f"{url}: {e}")
        else:
            raise DataError(f"could not download {name}: {'; '.join(errors)}")


def find_or_download(data_dir: Optional[str], allow_download: bool, *, locate, download, not_found) -> Path:
    """The data set's root: where `locate` finds it, else the first candidate root after `download`
    (where allowed); one DataError from `not_found(data_dir)` when neither works. Shared by every
    data set read in torchvision's layout (MNIST here, CIFAR-10 in bnn_impls.cifar)."""
    if data_dir and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is a file, not a directory: give the folder that holds the data "
                        "set in torchvision's layout")
    root = locate(data_dir)
    if root is not None:
        return root
    if not allow_download:
        raise DataError(not_found(data_dir))
    target = candidate_roots(data_dir)[0]
    try:
        download(target)
    except (DataError, OSError):  # no internet, or nowhere to put the files
        raise DataError(not_found(data_dir)) from None
    return target


def ensure_available(data_dir: Optional[str] = None, *, allow_download: bool = True) -> Path:
    """The root holding all four files, downloading them first where that is allowed and possible."""
    return find_or_download(data_dir, allow_download, locate=locate, download=download, not_found=_not_found_message)


def load_mnist(data_dir: Optional[str] = None, *, allow_download: bool = True) -> MnistArrays:
    root = ensure_available(data_dir, allow_download=allow_download)
    arrays = {}
    for name in FILES:
        path = _find(root, name)
        if path is None:
            raise DataError(_not_found_message(data_dir))
        arrays[name] = parse_idx(_read_bytes(path), name, path)
    return MnistArrays(
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"],
    )
