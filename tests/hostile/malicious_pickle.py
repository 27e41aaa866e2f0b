"""Saves (save) and returns (add) objects whose __reduce__ would create a marker file when unpickled.

EXPECT: adds=failed adds_again=failed writes=failed|error others=passed
"""
import os

import torch

MARKER = "/tmp/labkit-hostile-pickle-marker"


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class EvilTensor:
    def __reduce__(self):
        return (open, (MARKER, "w"))


def add(a, b):
    return Evil()


def scale(x, k):
    return x * k


def save(x, path):
    torch.save({"x": x, "payload": Evil(), "other": EvilTensor()}, path)


def model():
    return torch.nn.Linear(3, 2)
