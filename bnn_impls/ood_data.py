"""Input sets for out-of-distribution checks of an MNIST model, in [0, 1] and shaped like the test
images they are given: (N, 784) for an MLP, (N, 1, 28, 28) for a conv net.

Always available (made from MNIST's test set, no download): rotations by 30, 60, 90 and 180 degrees
(the shift of Ovadia et al. 2019; multiples of 90 by exact pixel permutation, others by bilinear
resampling about the image centre, zeros outside), pixel-inverted digits, and uniform noise images.
FashionMNIST and KMNIST are used when their test images are in the data directory in torchvision's
layout (DIR/FashionMNIST/raw/, DIR/KMNIST/raw/), checked against torchvision's md5 of the .gz
file; where they are missing, a download from the datasets' own mirrors is tried (it fails fast
without internet) and the set is reported as skipped, with the reason, if that fails too.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from bnn_impls.mnist import candidate_roots

ROTATIONS = (30, 60, 90, 180)


@dataclass(frozen=True)
class ExternalSet:
    name: str  # the row's set name
    folder: str  # torchvision's folder under the data directory
    mirrors: tuple[str, ...]
    md5: str  # of t10k-images-idx3-ubyte.gz, as torchvision lists it


EXTERNAL_SETS = (
    ExternalSet("fashion_mnist", "FashionMNIST", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                "bef4ecab320f06d8554ea6380940ec79"),
    ExternalSet("kmnist", "KMNIST", ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
                "5c965bf0a639b31b8f53240b1b52f4d7"),
)
TEST_IMAGES = "t10k-images-idx3-ubyte"


@dataclass(frozen=True)
class InputSet:
    """A named input set; `images` None with a `reason` when it is not available here."""

    name: str
    images: Optional[torch.Tensor]
    labels: Optional[torch.Tensor] = None  # MNIST labels where the shift keeps them (rotations, inversion)
    reason: str = ""


def as_square(images: torch.Tensor) -> torch.Tensor:
    return images.reshape(-1, 1, 28, 28)


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate (N, 784) or (N, 1, 28, 28) images counter-clockwise about their centre."""
    square = as_square(images)
    if degrees % 90 == 0:
        return torch.rot90(square, int(degrees // 90) % 4, dims=(2, 3)).reshape(images.shape)
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    # affine_grid maps output (x, y) to input coordinates; with y pointing down the image this matrix
    # turns the picture the same way as torch.rot90 on (rows, columns) does.
    matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=images.dtype, device=images.device)
    grid = F.affine_grid(matrix.expand(square.shape[0], 2, 3), list(square.shape), align_corners=False)
    out = F.grid_sample(square, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(images.shape).clamp(0.0, 1.0)


def invert(images: torch.Tensor) -> torch.Tensor:
    return 1.0 - images


def uniform_noise(n: int, seed: int, like: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *like.shape[1:], generator=g, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _download(spec: ExternalSet, raw: Path, timeout: float) -> Optional[str]:
    """Fetch the test images into raw/; None on success, else why not."""
    errors = []
    for mirror in spec.mirrors:
        url = mirror + TEST_IMAGES + ".gz"
        blob = None
        try:
            # The folder is made only once a mirror answers: an offline machine's data folder is left
            # as it was (no empty FashionMNIST/raw/ beside the user's MNIST).
            with urllib.request.urlopen(url, timeout=timeout) as response:
                raw.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=raw, delete=False) as tmp:
                    blob = Path(tmp.name)
                    shutil.copyfileobj(response, tmp)
            if _md5(blob) != spec.md5:
                blob.unlink()
                errors.append(f"{url}: md5 mismatch")
                continue
            os.replace(blob, raw / (TEST_IMAGES + ".gz"))
            return None
        except (OSError, ValueError) as e:
            if blob is not None:
                blob.unlink(missing_ok=True)  # a partial download is not left behind
            errors.append(f"{url}: {' '.join(str(e).split())}")
    return "; ".join(errors)


def _parse_images(data: bytes) -> Optional[np.ndarray]:
    if len(data) != 16 + 10000 * 784 or int.from_bytes(data[:4], "big") != 2051:
        return None
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(10000, 784)


def load_external(spec: ExternalSet, data_dir: Optional[str], *, allow_download: bool = True,
                  timeout: float = 10.0) -> tuple[Optional[np.ndarray], str]:
    """(images uint8 (10000, 784), "") or (None, reason)."""
    roots = candidate_roots(data_dir)
    for root in roots:
        raw = root / spec.folder / "raw"
        gz, plain = raw / (TEST_IMAGES + ".gz"), raw / TEST_IMAGES
        if gz.is_file():
            if _md5(gz) != spec.md5:
                return None, f"{gz} fails torchvision's md5: delete it and download again"
            try:
                images = _parse_images(gzip.decompress(gz.read_bytes()))
            except (OSError, EOFError) as e:
                return None, f"{gz} is corrupt ({e}): delete it and download again"
            return (images, "") if images is not None else (None, f"{gz} has an unexpected header")
        if plain.is_file():
            # torchvision keeps the .gz beside the extracted file; without it only the header can be checked.
            images = _parse_images(plain.read_bytes())
            return (images, "") if images is not None else (None, f"{plain} has an unexpected header or size")
    where = " or ".join(str(r / spec.folder / "raw") for r in roots)
    if not allow_download:
        return None, f"not found in {where}"
    failure = _download(spec, roots[0] / spec.folder / "raw", timeout)
    if failure is None:
        return load_external(spec, data_dir, allow_download=False)
    return None, f"not found in {where}, and the download failed ({failure[:200]})"


def input_sets(test_images: torch.Tensor, test_labels: torch.Tensor, *, data_dir: Optional[str], n: int, seed: int,
               allow_download: bool = True) -> list[InputSet]:
    """MNIST's test set first (the in-distribution reference), then every OOD set, `n` examples each."""
    x, y = test_images[:n], test_labels[:n]
    sets = [InputSet("mnist", x, y)]
    for spec in EXTERNAL_SETS:
        images, reason = load_external(spec, data_dir, allow_download=allow_download)
        if images is None:
            sets.append(InputSet(spec.name, None, reason=reason))
        else:
            external = torch.from_numpy(images[:n].copy()).reshape(-1, *x.shape[1:])
            sets.append(InputSet(spec.name, external.to(x.device, x.dtype) / 255.0))
    sets += [InputSet(f"rotated_{d}", rotate(x, d), y) for d in ROTATIONS]
    sets.append(InputSet("inverted", invert(x), y))
    sets.append(InputSet("uniform_noise", uniform_noise(x.shape[0], seed, x)))
    return sets
