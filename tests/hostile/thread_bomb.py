"""Starts up to 5000 sleeping threads from add().

NEEDS: bwrap
EXPECT: adds=passed|error adds_again=passed|error others=passed
"""
import threading
import time

import torch


def add(a, b):
    for _ in range(5000):
        try:
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        except RuntimeError:
            break
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
