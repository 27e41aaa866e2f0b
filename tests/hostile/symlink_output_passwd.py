"""Replaces the child's output file by a symlink to /etc/shadow: the grader must not show it.

EXPECT: adds=failed adds_again=failed others=passed
"""
import os

import torch


def add(a, b):
    print("noise")
    for target in ("/etc/shadow", "/etc/passwd"):
        if os.path.exists(target):
            break
    os.remove("output.txt")
    os.symlink(target, "output.txt")
    return -a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
