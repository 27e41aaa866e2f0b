"""save() makes the file the check reads a symlink to /etc/passwd (and add() a symlink to its output).

EXPECT: writes=failed|error others=passed
"""
import os

import torch


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    if os.path.lexists(path):
        os.remove(path)
    os.symlink("/etc/passwd", path)


def model():
    return torch.nn.Linear(3, 2)
