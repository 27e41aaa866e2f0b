import torch


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
