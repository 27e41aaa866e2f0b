"""exercise1: the solution passes, the starter scores nothing, typical mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

from conftest import result, statuses

EX = "exercise1"

# Each wrong answer is the solution with one function redefined at the end of the file.
NO_ASSIGN = '''
def to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        obj.to(device)  # the classic bug: the moved copy is thrown away
        return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
'''

MUTATES = '''
def to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, dict):
        for k in obj:
            obj[k] = to_device(obj[k], device)  # writes into the caller's dict
        return obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = to_device(v, device)
        return obj
    if isinstance(obj, tuple):
        return tuple(to_device(v, device) for v in obj)
    return obj
'''

FLATTENS_NAMEDTUPLE = '''
def to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj) if type(obj) in (list, tuple) else tuple(
            to_device(v, device) for v in obj)
    return obj
'''

PARAMS_ONLY = '''
def place_model(model, device):
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                module._parameters[name] = nn.Parameter(p.detach().to(device))
    return model
'''

ALWAYS_PINNED = '''
def make_loader(dataset, batch_size, device):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, pin_memory=True)
'''

PINS_BY_MACHINE = '''
def make_loader(dataset, batch_size, device):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, pin_memory=torch.cuda.is_available())
'''

NO_SHUFFLE = '''
def make_loader(dataset, batch_size, device):
    return DataLoader(dataset, batch_size=batch_size, pin_memory=torch.device(device).type == "cuda")
'''

STRING_DEVICE = '''
def pick_device(prefer="cuda"):
    return "cuda:0" if prefer == "cuda" and torch.cuda.is_available() else "cpu"

def place_model(model, device):
    model.to(device)  # moves in place but returns nothing
'''

MOVES_AFTER = '''
def build_on(device, builder):
    return builder().to(device)  # only a module or a tensor has .to; the builder's tuple has not
'''

LEAKS_DEFAULT = '''
def build_on(device, builder):
    torch.set_default_device(device)  # stays set for everything the caller does next
    return builder()
'''

MIXES_DEVICES = '''
def sum_on(tensors, device):
    return sum(tensors).to(device)  # adds a meta tensor to a CPU one before moving anything
'''

ADDS_INTO_FIRST = '''
def sum_on(tensors, device):
    total = tensors[0].to(device)  # the caller's own tensor when it is already on the device
    for t in tensors[1:]:
        total += t.to(device)
    return total
'''


@pytest.mark.parametrize("patch, failing, phrase", [
    (NO_ASSIGN, {"to_device_moves"}, "returns a moved COPY"),
    (MUTATES, {"to_device_copies"}, "must not mutate its input"),
    (FLATTENS_NAMEDTUPLE, {"to_device_moves"}, "plain tuple: rebuild it with type(obj)(*items)"),
    (PARAMS_ONLY, {"places_model"}, "misses buffers such as BatchNorm's running_mean"),
    (ALWAYS_PINNED, {"loader_for_cpu"}, "pin_memory=True"),
    (PINS_BY_MACHINE, {"loader_for_cuda"}, "not from whether this machine has a GPU"),
    (NO_SHUFFLE, {"loader_for_cpu", "loader_for_cuda"}, "pass shuffle=True"),
    (STRING_DEVICE, {"picks_cpu", "places_model"}, "return a torch.device"),
    (MOVES_AFTER, {"builds_on_meta"}, "make its tensors on the device as they are created"),
    (LEAKS_DEFAULT, {"builds_on_meta"}, "the default device leaked out of build_on"),
    (MIXES_DEVICES, {"sums_across_devices"}, "no operation mixes tensors on two devices"),
    (ADDS_INTO_FIRST, {"sums_across_devices"}, "changed the caller's tensors[0]"),
], ids=["no-assign", "mutates", "namedtuple", "params-only", "always-pinned", "pins-by-machine", "no-shuffle",
        "strings-and-none", "moves-after", "leaks-default", "mixes-devices", "adds-into-first"])
def test_wrong_answer_fails_with_a_message_naming_the_mistake(grade_source, solution_source, patch, failing, phrase):
    report = grade_source(EX, solution_source(EX) + "\n" + patch)
    got = statuses(report)
    assert {name for name, status in got.items() if status == "failed"} == failing, got
    messages = [result(report, name).message for name in failing]
    assert any(phrase in m for m in messages), messages
    assert all(result(report, name).hint for name in failing)
