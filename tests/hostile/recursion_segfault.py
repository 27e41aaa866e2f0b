"""Lifts the recursion limit and recurses until the C stack overflows inside add() (a crash by signal).

EXPECT: adds=error adds_again=error others=passed
"""
import sys

import torch


def add(a, b):
    sys.setrecursionlimit(10**8)

    def down(n):
        return down(n + 1) + 1

    return down(0)


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
