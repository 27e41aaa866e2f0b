"""Prints 200 MB inside add() (the output file is capped by RLIMIT_FSIZE, the report shows 16 KB).

EXPECT: adds=error adds_again=error others=passed
"""
import sys

import torch


def add(a, b):
    line = "x" * (1 << 20)
    for _ in range(200):
        sys.stdout.write(line)
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
