"""Judging a line fitted by full-batch gradient descent (the course notes' linear regression, exercise2's fit_line).

The grader's own least squares and the exact descent curve of the MSE: losses that do not follow gradient descent
with the given learning rate on these points, or a model that is not the one they trained, fail with the reason.
Nothing here trains a model; the submission's answer is only compared.
"""

from __future__ import annotations

import math

import torch

from labkit.checks import expect


def least_squares_mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """The best MSE any line reaches on (x, y), computed in float64."""
    a = torch.cat([x, torch.ones_like(x)], dim=1).double()
    return ((a @ torch.linalg.lstsq(a, y.double()).solution - y.double()) ** 2).mean().item()


def mse(got: object, x: torch.Tensor, y: torch.Tensor, call: str) -> float:
    """The MSE of the returned model, computed here from its weight and bias (its only parameters)."""
    ok = type(got) is tuple and len(got) == 2 and isinstance(got[0], dict) and got[0].get("report") == "module"
    expect(ok, f"{call} should return (model, losses), got {type(got).__name__}")
    params = {name.rsplit(".", 1)[-1]: t for name, t in got[0]["params"]}
    expect(len(got[0]["params"]) == 2 and set(params) == {"weight", "bias"} and all(
        t.numel() == 1 for t in params.values()), f"{call}: the model should be an nn.Linear(1, 1) (one weight, "
           f"one bias), got parameters {[(n, tuple(t.shape)) for n, t in got[0]['params']]}")
    w, b = params["weight"].double().item(), params["bias"].double().item()
    return ((w * x.double() + b - y.double()) ** 2).mean().item()


def expect_losses(losses: object, epochs: int, call: str) -> None:
    expect(type(losses) is list, f"{call}: losses should be a list, got {type(losses).__name__}")
    expect(len(losses) == epochs, f"{call}: expected {epochs} losses (one per epoch), got {len(losses)}")
    odd = [type(v).__name__ for v in losses if type(v) is not float]
    expect(not odd, f"{call}: losses should be Python floats (loss.item()), got {odd[0] if odd else ''}; keeping "
           "tensors keeps every epoch's autograd graph alive")


def expect_descent(losses: list[float], reached: float, x: torch.Tensor, y: torch.Tensor, call: str,
                   far: bool) -> None:
    """The losses and the model are those of full-batch gradient descent with lr 0.02 on these points: the MSE is
    quadratic, so its excess over the least squares after t steps is a*r1**t + b*r2**t, r = (1 - lr*h)**2 for the
    eigenvalues h of its Hessian (2/N)·AᵀA. The grader fits the start (a, b); the model is the curve's next (or, if
    recorded after the step, last) point. Faking it means computing the Hessian's spectrum: more work than SGD."""
    expect(all(math.isfinite(v) and v > 0 for v in losses), f"{call}: every loss should be a positive number")
    a, got = torch.cat([x, torch.ones_like(x)], dim=1).double(), torch.tensor(losses, dtype=torch.float64)
    best = least_squares_mse(x, y)
    expect(not far or losses[0] - best > 1e-3, f"{call}: the first loss {losses[0]:.6g} is already the least-squares "
           f"MSE {best:.6g}; train from nn.Linear(1, 1)'s own initialisation")  # these lines start far from it
    rates = (1 - 0.02 * torch.linalg.eigvalsh(2 / len(a) * a.T @ a)) ** 2
    basis = rates ** torch.arange(len(got) + 1, dtype=torch.float64)[:, None]
    start = torch.linalg.lstsq(basis[:-1] / got[:, None], ((got - best) / got)[:, None]).solution
    want = best + (basis @ start).flatten()
    t = int(((want[:-1] - got).abs() / got).argmax())
    expect(abs(want[t] - got[t]) <= 1e-4 * got[t], f"{call}: the losses do not follow full-batch gradient descent "
           f"with lr 0.02 on these points (epoch {t}: {losses[t]:.6g}, where the other epochs say {want[t]:.6g}); "
           "each epoch: the MSE of model(x) on all the points, one SGD step, losses.append(loss.item())")
    expect(min(abs(reached - want[-1]), abs(reached - want[-2])) <= 1e-4 * reached, f"{call}: the returned model "
           f"(MSE {reached:.6g}) is not the one these losses trained; return the model you trained")
