"""Returns the right answer but leaves a non-daemon thread spinning and a sleeping child thread behind.

EXPECT: adds=passed|error adds_again=passed|error others=passed
"""
import threading
import time

import torch


def _spin():
    deadline = time.monotonic() + 20  # bounded: never longer than 20 s even if nobody stops it
    while time.monotonic() < deadline:
        pass


def add(a, b):
    threading.Thread(target=_spin).start()
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
