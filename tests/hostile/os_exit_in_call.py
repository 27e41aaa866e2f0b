"""Calls os._exit(0) inside add(), after printing the right answer.

EXPECT: adds=error adds_again=error others=passed
"""
import os

import torch


def add(a, b):
    print(a + b, "PASSED", flush=True)
    os._exit(0)


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
