"""Detects the grader (sys.modules, environment, working folder, __name__) and then returns plausible wrong values.

EXPECT: adds=failed adds_again=failed scales=failed others=passed
"""
import os
import sys

import torch


def _graded():
    return ("labkit_checks" in sys.modules or "labkit" in sys.modules or "labkit" in os.getcwd()
            or __name__ != "__main__" or any("labkit" in v for v in os.environ.values()))


def add(a, b):
    return a + b + 1 if _graded() else a + b


def scale(x, k):
    return x * k * (1.001 if _graded() else 1.0)


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
