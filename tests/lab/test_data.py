"""labkit.lab.data: Fashion-MNIST read by torchvision from IDX files the tests write; the synthetic stand-in."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time

import pytest
import torch

from labkit.lab import data


def write_idx(raw, split: str, images: torch.Tensor, labels: torch.Tensor, packed: bool = False) -> None:
    """IDX files as Fashion-MNIST ships them: big-endian magic 2051 (images) and 2049 (labels), then uint8 data."""
    raw.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    blobs = {f"{split}-images-idx3-ubyte": struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes(),
             f"{split}-labels-idx1-ubyte": struct.pack(">II", 2049, n) + labels.numpy().tobytes()}
    for name, blob in blobs.items():
        if packed:
            (raw / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (raw / name).write_bytes(blob)


def fake_fashion(root, n_train: int = 12, n_test: int = 5, packed: bool = False):
    g = torch.Generator().manual_seed(0)
    made = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        write_idx(data.raw_folder(root), split, images, labels, packed)
        made[split] = (images, labels)
    return made


def test_fashion_mnist_is_read_by_torchvision_from_idx_files(tmp_path):
    made = fake_fashion(tmp_path)
    assert data.has_fashion_mnist(tmp_path)
    for split, train in (("train", True), ("t10k", False)):
        X, y = data.fashion_mnist(tmp_path, train=train).tensors
        images, labels = made[split]
        assert X.shape == (len(labels), 1, 28, 28) and X.dtype == torch.float32
        assert 0.0 <= X.min() and X.max() <= 1.0
        assert torch.equal(X, images.unsqueeze(1).float() / 255) and y.dtype == torch.int64
        assert torch.equal(y, labels.long())


def test_load_uses_the_real_files_when_present(tmp_path):
    fake_fashion(tmp_path)
    train, test, source = data.load(tmp_path, n_train=5, n_test=3, seed=1)
    assert source.startswith("Fashion-MNIST from") and str(tmp_path) in source
    assert (len(train), len(test)) == (5, 3)
    again, _, _ = data.load(tmp_path, n_train=5, n_test=3, seed=1)
    assert torch.equal(train.tensors[0], again.tensors[0])  # the subset is chosen by the seed


def test_load_falls_back_to_the_synthetic_stand_in(tmp_path):
    train, test, source = data.load(tmp_path / "empty", n_train=40, n_test=20, seed=3)
    assert source == "synthetic stand-in (seed 3)"
    assert (len(train), len(test)) == (40, 20)
    assert not torch.equal(train.tensors[0][:20], test.tensors[0])  # the test images are other samples


def test_fashion_mnist_missing_says_how_to_fetch(tmp_path):
    with pytest.raises(data.DataError, match="labkit data fetch"):
        data.fashion_mnist(tmp_path, train=True)


def test_data_root_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("LABKIT_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "labkit" / "data"


def test_synthetic_is_deterministic_balanced_and_fast():
    start = time.perf_counter()
    a = data.synthetic(1000, seed=7)
    seconds = time.perf_counter() - start
    b, c = data.synthetic(1000, seed=7), data.synthetic(1000, seed=8)
    X, y = a.tensors
    assert X.shape == (1000, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert torch.equal(X, b.tensors[0]) and torch.equal(y, b.tensors[1])
    assert not torch.equal(X, c.tensors[0])
    assert torch.bincount(y, minlength=10).tolist() == [100] * 10
    assert seconds < 0.5, seconds  # "well under a second": about 0.05 s here
    assert len(data.synthetic(0)) == 0


def test_synthetic_is_learnable_but_not_trivial():
    X, y = data.synthetic(500, seed=1).tensors
    Xt, yt = data.synthetic(500, seed=2).tensors
    means = torch.stack([X[y == k].mean(0).flatten() for k in range(10)])
    guess = torch.cdist(Xt.flatten(1), means).argmin(1)  # nearest class mean: no training at all
    acc = (guess == yt).float().mean().item()
    assert 0.5 < acc, acc  # chance is 0.1
    shifted = (X.flatten(1) - X.flatten(1).mean(0)).abs().mean().item()
    assert shifted > 0.05  # samples of a class differ (shift, contrast, noise)


def test_fetch_reports_files_already_there(tmp_path):
    fake_fashion(tmp_path)
    assert "already" in data.fetch(tmp_path)


def test_fetch_unpacks_gz_files_copied_by_hand(tmp_path):
    fake_fashion(tmp_path, packed=True)
    assert not data.has_fashion_mnist(tmp_path)
    assert "unpacked" in data.fetch(tmp_path)
    assert len(data.fashion_mnist(tmp_path, train=False)) == 5


def test_fetch_without_a_network_raises_a_clear_data_error(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://x, got:\n<urlopen error "
                           "[Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(FashionMNIST, "download", offline)
    with pytest.raises(data.DataError) as err:
        data.fetch(tmp_path)
    message = str(err.value)
    assert message.startswith("cannot download Fashion-MNIST here") and "name resolution" in message
    assert "train-images-idx3-ubyte.gz" in message and str(data.raw_folder(tmp_path)) in message


def test_torchvision_is_imported_only_for_the_real_files(tmp_path):
    code = ("import sys; from labkit.lab import data; data.load(sys.argv[1], n_train=10, n_test=10); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_stand_in_is_read_back_as_fashion_mnist(tmp_path):
    from labkit.inputs import synthetic
    from labkit.lab.data import fashion_mnist, write_stand_in

    write_stand_in(tmp_path, 30, 10)
    train, test = fashion_mnist(tmp_path, train=True), fashion_mnist(tmp_path, train=False)
    assert len(train) == 30 and len(test) == 10 and train.tensors[0].shape == (30, 1, 28, 28)
    want = synthetic(30, 0).tensors
    assert torch.equal(train.tensors[1], want[1]) and (train.tensors[0] - want[0]).abs().max() <= 0.5 / 255 + 1e-6
