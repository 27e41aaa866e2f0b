"""A conftest.py beside the submission (written by the test) patches add(); the submission's own add() is wrong.

BESIDE: conftest.py
EXPECT: adds=failed adds_again=failed others=passed
"""
import torch

COMPANION = """
import builtins
import sys

for name, mod in list(sys.modules.items()):
    if name.startswith("exercise99") and hasattr(mod, "add"):
        mod.add = lambda a, b: a + b
builtins.HOSTILE_COMPANION_LOADED = True
"""


def add(a, b):
    import builtins

    return a + b if getattr(builtins, "HOSTILE_COMPANION_LOADED", False) else a * b + 7


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
