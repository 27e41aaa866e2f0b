"""Recurses forever inside add() (RecursionError).

EXPECT: adds=error adds_again=error others=passed
"""
import torch


def add(a, b):
    return add(b, a) + 0


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
