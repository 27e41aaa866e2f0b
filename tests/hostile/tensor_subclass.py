"""Returns from scale() a torch.Tensor subclass whose comparisons always succeed.

EXPECT: scales=failed others=passed
"""
import torch


class Agreeable(torch.Tensor):
    def __eq__(self, other):
        return torch.ones_like(other, dtype=torch.bool) if isinstance(other, torch.Tensor) else True

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


def add(a, b):
    return a + b


def scale(x, k):
    return torch.zeros_like(x).as_subclass(Agreeable)


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
