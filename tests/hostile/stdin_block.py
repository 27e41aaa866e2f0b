"""Blocks reading stdin (input()) inside add() and at import (sys.stdin.read()).

EXPECT: adds=error adds_again=error others=passed
"""
import sys

import torch

_ = sys.stdin.read()


def add(a, b):
    return int(input("a + b = "))


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
