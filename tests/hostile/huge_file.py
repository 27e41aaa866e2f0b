"""Writes 1 GB to a file in its working folder inside save(): RLIMIT_FSIZE stops it.

EXPECT: writes=failed|error others=passed
"""
import torch


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    chunk = b"\0" * (1 << 20)
    with open(path + ".big", "wb") as f:
        for _ in range(1024):
            f.write(chunk)
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
