"""Returns from add() an int subclass (and an object) whose __eq__ always says True.

EXPECT: adds=failed adds_again=failed others=passed
"""
import torch


class Liar(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __bool__(self):
        return True


def add(a, b):
    return Liar(0) if a % 2 else AlwaysEqual()


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
