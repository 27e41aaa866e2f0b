"""Deletes everything in its working folder (its own output file too) after saving, and in add().

EXPECT: writes=failed|error others=passed
"""
import os
import shutil

import torch


def _wipe():
    for name in os.listdir("."):
        if os.path.isdir(name) and not os.path.islink(name):
            shutil.rmtree(name, ignore_errors=True)
        else:
            try:
                os.remove(name)
            except OSError:
                pass


def add(a, b):
    print("this output file is about to be deleted")
    _wipe()
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)
    _wipe()
    for name in os.listdir(os.path.dirname(path) or "."):
        os.remove(os.path.join(os.path.dirname(path), name))


def model():
    return torch.nn.Linear(3, 2)
