"""Prints the right answer and then hangs forever in add() (a printed answer must not count).

EXPECT: adds=error adds_again=error others=passed
"""
import time

import torch


def add(a, b):
    print(a + b, flush=True)
    while True:
        time.sleep(1)


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
