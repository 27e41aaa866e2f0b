"""A sitecustomize.py beside the submission (written by the test) would make add() right if Python loaded it.

BESIDE: sitecustomize.py
EXPECT: adds=failed adds_again=failed others=passed
"""
import torch

COMPANION = """
import builtins

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
