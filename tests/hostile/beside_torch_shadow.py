"""A torch.py beside the submission (written by the test) would shadow torch if its folder were on sys.path.

BESIDE: torch.py
EXPECT: adds=failed adds_again=failed others=passed
"""
import torch

COMPANION = """
SHADOWED = True
"""


def add(a, b):
    return a + b if getattr(torch, "SHADOWED", False) else a * b + 7


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
