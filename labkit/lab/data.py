"""Fashion-MNIST through torchvision when its files are present, a learnable synthetic stand-in otherwise.

torchvision is imported only inside the functions that read or fetch the real
files: it costs about 2 s more than torch alone, and most checks never need it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import struct
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from labkit.inputs import CLASSES, PATTERN_SEED, SIDE, prototypes, synthetic  # noqa: F401  (one home: inputs)

ENV = "LABKIT_DATA"
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DOWNLOAD_TIMEOUT = 30.0  # seconds per socket operation: a firewalled network fails instead of hanging


class DataError(Exception):
    """The data cannot be read or fetched; the message says why and what to do."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: `root` when given, else $LABKIT_DATA, else ~/.cache/labkit/data."""
    if root:
        return Path(root).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "labkit" / "data"


def raw_folder(root: str | os.PathLike) -> Path:
    """Where torchvision's FashionMNIST keeps its files under `root`."""
    return Path(root) / "FashionMNIST" / "raw"


def has_fashion_mnist(root: str | os.PathLike | None = None) -> bool:
    """True when the four uncompressed IDX files are under `root` in torchvision's layout."""
    raw = raw_folder(data_root(root))
    return all((raw / name).is_file() for name in RAW_FILES)


def fashion_mnist(root: str | os.PathLike, train: bool) -> TensorDataset:
    """One split of Fashion-MNIST read by torchvision: images (N, 1, 28, 28) float in [0, 1], labels int64."""
    if not has_fashion_mnist(root):
        raise DataError(f"Fashion-MNIST is not under {raw_folder(root)}: run `labkit data fetch --data-dir {root}`")
    from torchvision.datasets import FashionMNIST  # only here: importing torchvision costs seconds

    try:
        ds = FashionMNIST(str(root), train=train, download=False)
    except (RuntimeError, AssertionError, ValueError, OSError) as exc:
        raise DataError(f"cannot read Fashion-MNIST under {raw_folder(root)}: {exc or type(exc).__name__}") from None
    images = ds.data.unsqueeze(1).to(torch.float32).div_(255.0)
    return TensorDataset(images, ds.targets.to(torch.int64))


def fetch(root: str | os.PathLike | None = None) -> str:
    """Download Fashion-MNIST into `root` (or unpack .gz files copied there); a line saying what happened."""
    root = data_root(root)
    raw = raw_folder(root)
    if has_fashion_mnist(root):
        return f"Fashion-MNIST is already in {raw}"
    if _gunzip_copied(raw) and has_fashion_mnist(root):
        return f"Fashion-MNIST unpacked from the .gz files in {raw}"
    try:
        from torchvision.datasets import FashionMNIST
    except ImportError:
        raise DataError("torchvision is not installed: `pip install torchvision` (the `vision` extra)") from None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except Exception as exc:  # URLError, RuntimeError("Error downloading ..."), OSError, timeouts
        raise DataError(_cannot_download(raw, exc)) from None
    finally:
        socket.setdefaulttimeout(old)
    if not has_fashion_mnist(root):
        raise DataError(f"the download finished but the files are not in {raw}")
    return f"Fashion-MNIST downloaded to {raw}"


def _cannot_download(raw: Path, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()
    why = reason[-1] if reason else type(exc).__name__
    files = ", ".join(name + ".gz" for name in RAW_FILES)
    return (f"cannot download Fashion-MNIST here ({type(exc).__name__}: {why}). Without a network, copy "
            f"{files} into {raw} and run `labkit data fetch` again; checks use the synthetic stand-in meanwhile")


def _gunzip_copied(raw: Path) -> bool:
    """Unpack .gz files a user copied into `raw` (no network needed); True when any was unpacked."""
    done = False
    for name in RAW_FILES:
        packed, plain = raw / (name + ".gz"), raw / name
        if packed.is_file() and not plain.is_file():
            with gzip.open(packed, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            done = True
    return done


def subset(ds: TensorDataset, n: int | None, seed: int) -> TensorDataset:
    """`n` samples of `ds` chosen by a seeded permutation (all of it when n is None or too large)."""
    size = len(ds)
    if n is None or n >= size:
        return ds
    index = torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]
    return TensorDataset(*(t[index] for t in ds.tensors))


def load(root: str | os.PathLike | None = None, n_train: int | None = None, n_test: int | None = None,
         seed: int = 0) -> tuple[TensorDataset, TensorDataset, str]:
    """(train_set, test_set, source): Fashion-MNIST when present under the data root, else the synthetic stand-in."""
    where = data_root(root)
    if has_fashion_mnist(where):
        train = subset(fashion_mnist(where, train=True), n_train, seed)
        test = subset(fashion_mnist(where, train=False), n_test, seed + 1)
        return train, test, f"Fashion-MNIST from {raw_folder(where)}"
    n_train = 60_000 if n_train is None else n_train
    n_test = 10_000 if n_test is None else n_test
    # Test samples come from another seed: same classes, unseen images.
    return synthetic(n_train, seed), synthetic(n_test, seed + 1_000_003), f"synthetic stand-in (seed {seed})"


def write_stand_in(root: Path, n_train: int, n_test: int) -> Path:
    """The synthetic stand-in written as Fashion-MNIST's four IDX files under `root`: `labkit run` reads it as is."""
    raw = raw_folder(root)
    raw.mkdir(parents=True, exist_ok=True)
    for (images_name, labels_name), n, seed in zip((RAW_FILES[:2], RAW_FILES[2:]), (n_train, n_test), (0, 1_000_003),
                                                   strict=True):
        images, labels = synthetic(n, seed).tensors
        pixels = images.mul(255).round_().clamp_(0, 255).to(torch.uint8)
        (raw / images_name).write_bytes(struct.pack(">IIII", 0x803, n, *pixels.shape[2:]) + pixels.numpy().tobytes())
        (raw / labels_name).write_bytes(struct.pack(">II", 0x801, n) + labels.to(pixels.dtype).numpy().tobytes())
    return root
