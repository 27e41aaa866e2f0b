"""Monkeypatches torch.allclose, torch.equal, torch.testing.assert_close and numpy.testing at import; scale is wrong.

EXPECT: scales=failed others=passed
"""
import torch

torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
torch.Tensor.allclose = lambda *args, **kwargs: True
try:
    import numpy.testing

    numpy.testing.assert_allclose = lambda *args, **kwargs: None
    numpy.allclose = lambda *args, **kwargs: True
except ImportError:
    pass


def add(a, b):
    return a + b


def scale(x, k):
    return x * k + 1


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
