"""Writes fake result and report files into its working folder and the folders above it.

EXPECT: adds=failed adds_again=failed others=passed
"""
import json
import os

import torch


def add(a, b):
    fake = json.dumps({"score": 6, "max_score": 6, "results": [{"name": "adds", "status": "passed"}]})
    for folder in (".", "..", "../.."):
        for name in ("results.json", "report.json", "result.json", "score.txt"):
            try:
                with open(os.path.join(folder, name), "w") as f:
                    f.write(fake)
            except OSError:
                pass
    return a - b - 1


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
