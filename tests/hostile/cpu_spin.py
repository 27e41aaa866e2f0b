"""Spins the CPU forever inside scale().

EXPECT: scales=error others=passed
"""
import torch


def add(a, b):
    return a + b


def scale(x, k):
    while True:
        pass


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
