"""exercise2: the solution passes, the starter scores nothing, typical mistakes fail with a message that names them.

Grading exercise2 takes a few seconds (two 1000-epoch fits), so wrong answers that break different checks are
graded together: each group is the solution with several functions redefined at the end of the file.
"""

from __future__ import annotations

import pytest

from conftest import result, statuses

EX = "exercise2"

FLOOR_SPLIT = '''
def replica_batch_sizes(batch_size, num_devices):
    if batch_size < 1 or num_devices < 1:
        raise ValueError("need at least one sample and one device")
    return [batch_size // num_devices] * num_devices
'''

ARRAY_SPLIT = '''
def replica_batch_sizes(batch_size, num_devices):
    if batch_size < 1 or num_devices < 1:
        raise ValueError("need at least one sample and one device")
    base, extra = divmod(batch_size, num_devices)
    return [base + (i < extra) for i in range(num_devices)]
'''

NO_VALUE_ERROR = '''
def replica_batch_sizes(batch_size, num_devices):
    return [len(c) for c in torch.arange(batch_size).chunk(num_devices)]
'''

ALWAYS_WRAP = '''
def wrap_data_parallel(model, device_ids=None):
    return nn.DataParallel(model, device_ids=device_ids)
'''

PREFIXED = '''
def save_portable(model, path):
    torch.save(model.state_dict(), path)  # a DataParallel's keys start with "module."
'''

WHOLE_MODEL = '''
def save_portable(model, path):
    torch.save(model, path)
'''

LR_IGNORED = '''
_fit_line = fit_line

def fit_line(x, y, epochs, lr, device):
    return _fit_line(x, y, epochs, 1e-4, device)  # the course notes' learning rate
'''

FEW_EPOCHS = '''
_fit_line = fit_line

def fit_line(x, y, epochs, lr, device):
    return _fit_line(x, y, epochs // 10, lr, device)
'''

TENSOR_LOSSES = '''
def fit_line(x, y, epochs, lr, device):
    model = nn.Linear(1, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        loss = nn.functional.mse_loss(model(x.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss)  # keeps the tensor (and its graph)
    return model, losses
'''

NO_POINTS = '''
def plot_fit(x, y, model, path):
    import matplotlib.pyplot as plt
    with torch.no_grad():
        plt.plot(x.flatten().tolist(), model(x).flatten().tolist(), "b-")
    plt.savefig(path)
    plt.close()
'''

NO_LINE = '''
def plot_fit(x, y, model, path):
    import matplotlib.pyplot as plt
    plt.plot(x.flatten().tolist(), y.flatten().tolist(), "ro")
    plt.savefig(path)
    plt.close()
'''

# Right answers written differently: pyplot, a scatter, and the notes' unsorted line from tensors.
PYPLOT_SCATTER = '''
def plot_fit(x, y, model, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    predict = model(x).detach()
    plt.scatter(x.numpy(), y.numpy(), c="r", label="Original data")
    plt.plot(x.numpy(), predict.numpy(), label="Fitting Line")
    plt.legend()
    plt.savefig(path)
'''

NEW_MODEL = '''
def wrap_data_parallel(model, device_ids=None):
    return nn.Sequential(nn.Linear(5, 2))  # a model, but not the one it was given
'''

# A forgery: the least-squares line (not trained) with a made-up falling list of losses.
LSTSQ_FORGED = '''
def fit_line(x, y, epochs, lr, device):
    a = torch.cat([x, torch.ones_like(x)], dim=1)
    solution = torch.linalg.lstsq(a, y).solution
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(solution[0, 0].item())
        model.bias.fill_(solution[1, 0].item())
    best = ((a @ solution - y) ** 2).mean().item()
    return model, [best + 10 * 0.99 ** t for t in range(epochs)]
'''

# A forgery: the least-squares line with losses that claim training started there.
STARTS_AT_THE_ANSWER = LSTSQ_FORGED.replace("[best + 10 * 0.99 ** t", "[best * (1 + 1e-9 * (epochs - t))")

# Right answers written differently: the step by hand, the loss recorded after the step, in float64.
HAND_STEPS = '''
def fit_line(x, y, epochs, lr, device):
    model = nn.Linear(1, 1).double().to(device)
    x, y = x.double().to(device), y.double().to(device)
    losses = []
    for _ in range(epochs):
        loss = ((model(x) - y) ** 2).mean()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
            losses.append(((model(x) - y) ** 2).mean().item())
    return model, losses
'''

GROUPS = {
    "floor-wrap-prefix-points-lr": (FLOOR_SPLIT + ALWAYS_WRAP + PREFIXED + NO_POINTS + LR_IGNORED, {
        "replica_sizes": "that is [batch // n] * n",
        "wrap_bare": "returned a DataParallel",
        "saves_portable": "'module.' is DataParallel's prefix",
        "plots_fit": "no markers at the 15 data points",
        "fit_converges": "not within 1% of the least-squares MSE",
    }),
    "valueerror-pickle-epochs-line": (NO_VALUE_ERROR + WHOLE_MODEL + FEW_EPOCHS + NO_LINE, {
        "replica_sizes_invalid": "instead of raising ValueError",
        "saves_portable": "not the model object",
        "fit_converges": "(one per epoch)",
        "plots_fit": "has no line",
    }),
    "array-split-tensor-losses": (ARRAY_SPLIT + TENSOR_LOSSES, {
        "replica_sizes": "like numpy.array_split",
        "fit_converges": "Python floats (loss.item())",
    }),
    "new-model-forged-fit": (NEW_MODEL + LSTSQ_FORGED, {
        "wrap_bare": "other weights than the one it was given",
        "fit_converges": "do not follow full-batch gradient descent",
    }),
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_wrong_answers_fail_with_a_message_naming_the_mistake(grade_source, solution_source, group):
    patch, expected = GROUPS[group]
    report = grade_source(EX, solution_source(EX) + "\n" + patch)
    got = statuses(report)
    assert {name for name, status in got.items() if status == "failed"} == set(expected), got
    for name, phrase in expected.items():
        r = result(report, name)
        assert phrase in r.message, (name, r.message)
        assert r.hint


def test_plot_written_with_pyplot_and_scatter_passes(grade_source, solution_source):
    report = grade_source(EX, solution_source(EX) + "\n" + PYPLOT_SCATTER)
    assert result(report, "plots_fit").status == "passed", result(report, "plots_fit").message


def test_gradient_descent_written_by_hand_passes(grade_source, solution_source):
    report = grade_source(EX, solution_source(EX) + "\n" + HAND_STEPS, only=["fit_converges"])
    assert result(report, "fit_converges").status == "passed", result(report, "fit_converges").message


def test_losses_that_start_at_the_answer_fail(grade_source, solution_source):
    report = grade_source(EX, solution_source(EX) + "\n" + STARTS_AT_THE_ANSWER, only=["fit_converges"])
    failed = result(report, "fit_converges")
    assert failed.status == "failed" and "is already the least-squares MSE" in failed.message, failed.message
