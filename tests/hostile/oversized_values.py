"""Returns values that cannot travel: a 10**5000 int from add(), a 5 MB string from model().

EXPECT: adds=error|failed adds_again=error|failed builds=error|failed others=passed
"""
import torch


def add(a, b):
    return 10**5000 + a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return "x" * (5 << 20)
