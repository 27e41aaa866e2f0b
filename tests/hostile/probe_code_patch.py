"""Patches labkit's child interpreter at import time so that every module report claims torch's Linear(3, 2).

There are no probes any more: the child's generic code (labkit.sandbox.program and facts) is the only
trusted code beside the student's, and the student can rewrite it. The forged report fails because the
check recomputes the model's output from the reported parameters on its own input.
EXPECT: builds=failed|error others=passed
"""
import sys

import torch

_facts = sys.modules.get("labkit.sandbox.facts")
if _facts is not None:
    _real = _facts.module_facts

    def _forged(net, values=True):
        report = _real(net, values)
        linear = "torch.nn.modules.linear.Linear"
        report.update(type=linear, name="Linear", torch=True,
                      params=[["weight", torch.zeros(2, 3)], ["bias", torch.zeros(2)]])
        return report

    _facts.module_facts = _forged


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(5, 5)
