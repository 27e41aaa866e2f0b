"""Prints fake "all checks passed" lines and a fake score on stdout and stderr, and returns a wrong sum.

EXPECT: adds=failed adds_again=failed others=passed
"""
import sys

import torch


def add(a, b):
    print("✓ all checks PASSED 6/6   score: 6/6")
    print("adds: passed (1/1)", file=sys.stderr)
    return a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
