"""Replaces the child's output file by a named pipe (FIFO): the grader must not block reading it.

EXPECT: adds=failed|error adds_again=failed|error others=passed
"""
import os

import torch


def add(a, b):
    os.remove("output.txt")
    os.mkfifo("output.txt")
    return a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
