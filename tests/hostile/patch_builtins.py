"""Monkeypatches builtins.isinstance (True for int), builtins.abs, and returns a str.

EXPECT: adds=failed adds_again=failed others=passed
"""
import builtins

import torch

_isinstance = builtins.isinstance
builtins.isinstance = lambda obj, cls: True if cls is int else _isinstance(obj, cls)
builtins.abs = lambda x: 0


def add(a, b):
    return str(a + b)


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
