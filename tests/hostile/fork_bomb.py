"""Forks up to 2000 sleeping children from add() (bounded, so it stays harmless even without a sandbox).

NEEDS: bwrap
EXPECT: adds=passed|error adds_again=passed|error others=passed
"""
import os
import time

import torch


def add(a, b):
    for _ in range(2000):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
