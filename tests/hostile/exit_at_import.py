"""Calls sys.exit(0) at import time, after printing a fake pass.

EXPECT: others=error
"""
import sys

import torch

print("✓ PASSED 6/6")
sys.exit(0)


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
