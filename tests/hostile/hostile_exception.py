"""Raises from add() an exception named like the grader's own (CheckFailed/Skip) with a hostile, huge __str__.

EXPECT: adds=error|failed adds_again=error|failed others=passed
"""
import torch


class Skip(Exception):
    def __str__(self):
        return "passed " * 10**6


class Inconclusive(BaseException):
    def __str__(self):
        raise RuntimeError("no message for you")


def add(a, b):
    raise Skip() if a % 2 else Inconclusive()


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
