"""The grading engine fails closed: hostile or broken files never pass and never stop later checks."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import torch

from labkit.course.course import resolve
from labkit.grading.engine import grade, seed_for
from labkit.sandbox import wire

from conftest import result, statuses

TOY = Path(__file__).parent.parent / "toy"
SOLUTION = (TOY / "exercise99" / "solution.py").read_text()


@pytest.fixture
def grade_toy(worker, tmp_path):
    def run(source: str):
        path = tmp_path / "exercise99.py"
        path.write_text(source)
        return grade(resolve("exercise99", TOY), path, worker=worker)

    return run


def test_solution_passes_and_gpu_check_is_skipped_apart(grade_toy):
    report = grade_toy(SOLUTION)
    assert statuses(report) == {"adds": "passed", "scales": "passed", "writes": "passed", "builds": "passed",
                                "adds_again": "passed", "many_gpus": "skipped"}
    assert (report.score, report.max_score, report.ok) == (5, 5, True)
    assert "needs 8 GPU(s)" in result(report, "many_gpus").message


def test_same_file_same_seed_and_verdicts(grade_toy):
    first, second = grade_toy(SOLUTION), grade_toy(SOLUTION)
    assert first.seed == second.seed == seed_for("exercise99", first.sha256)
    assert grade_toy(SOLUTION + "\n# changed\n").seed != first.seed


def test_syntax_error_fails_every_check_at_once(grade_toy):
    start = time.monotonic()
    report = grade_toy("def add(a, b:\n    return a + b\n")
    assert time.monotonic() - start < 5
    assert {r.status for r in report.results if r.name != "many_gpus"} == {"error"}
    assert result(report, "many_gpus").status == "skipped" and report.max_score == 5
    assert "syntax error at line 1" in result(report, "adds").message
    assert report.score == 0 and not report.ok


def test_exit_at_import_and_printed_passes_fail(grade_toy):
    report = grade_toy('print("✓ all checks PASSED 6/6")\nimport sys\nsys.exit(0)\n')
    assert report.score == 0
    assert "called exit() at import time" in result(report, "adds").message
    assert "PASSED" in result(report, "adds").output  # shown as feedback, never parsed


def test_hang_at_import_costs_one_limit_not_one_per_check(grade_toy):
    start = time.monotonic()
    report = grade_toy("while True:\n    pass\n")
    assert time.monotonic() - start < 12
    assert "timed out after 3 s while importing your file" in result(report, "adds").message
    assert report.count("passed") == 0


def test_hang_in_one_function_fails_only_its_checks(grade_toy):
    start = time.monotonic()
    report = grade_toy(SOLUTION + "\ndef scale(x, k):\n    while True:\n        pass\n")
    assert time.monotonic() - start < 15
    assert result(report, "scales").status == "error"
    assert "timed out after 2 s while running scale()" in result(report, "scales").message
    assert [result(report, n).status for n in ("adds", "writes", "builds", "adds_again")] == ["passed"] * 4


def test_os_exit_inside_a_call_is_an_error_and_later_checks_run(grade_toy):
    report = grade_toy(SOLUTION + "\ndef add(a, b):\n    import os\n    print('PASSED')\n    os._exit(0)\n")
    assert result(report, "adds").status == "error"
    assert "ended the process (exit status 0)" in result(report, "adds").message
    assert result(report, "scales").status == "passed"


def test_killing_the_worker_only_costs_that_check(grade_toy):
    report = grade_toy(SOLUTION + "\ndef add(a, b):\n    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                       "    return a + b\n")
    # The answer itself is right; what matters is that grading goes on with a fresh worker.
    assert [r.status for r in report.results[1:5]] == ["passed"] * 4


def test_fake_protocol_output_and_stray_files_do_not_pass(grade_toy):
    fake = '{"kind": "result", "ok": true, "value": 5}'
    source = SOLUTION + f"""
import torch as _t
_t.save(_t.zeros(3), "answer.pt")  # a stray file where the check will look
def add(a, b):
    print({fake!r})
    return 0
def save(x, path):
    pass
"""
    report = grade_toy(source)
    assert result(report, "adds").status == "failed" and fake in result(report, "adds").output
    assert result(report, "writes").status == "failed"


def test_output_flood_is_capped_and_stopped(grade_toy):
    report = grade_toy(SOLUTION + "\ndef add(a, b):\n    while True:\n        print('x' * 100000)\n")
    r = result(report, "adds")
    assert r.status == "error" and len(r.output) < 20_000 and "more bytes not shown" in r.output
    assert result(report, "scales").status == "passed"


def test_side_effects_do_not_leak_between_checks(grade_toy):
    source = SOLUTION + """
def add(a, b):
    import builtins, torch
    torch.set_default_device("meta")
    builtins.print = None
    return a + b
"""
    report = grade_toy(source)
    assert result(report, "adds").status == "passed"
    assert result(report, "scales").status == "passed" and result(report, "builds").status == "passed"


def test_exceptions_point_at_the_students_line(grade_toy):
    report = grade_toy(SOLUTION + "\ndef scale(x, k):\n    raise NotImplementedError('exercise99: scale')\n")
    message = result(report, "scales").message
    assert "not implemented yet (exercise99: scale)" in message and "line" in message and "scale" in message
    missing = grade_toy("import torch\n")
    assert "has no function add()" in result(missing, "adds").message


def test_memory_bomb_is_an_error(grade_toy):
    report = grade_toy(SOLUTION + "\ndef add(a, b):\n    import torch\n    return torch.ones(1 << 40).sum()\n")
    assert result(report, "adds").status == "error"
    assert result(report, "scales").status == "passed"


def test_objects_that_cannot_travel_come_back_opaque(grade_toy):
    source = SOLUTION + """
class Liar:
    def __eq__(self, other):
        return True
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))
def add(a, b):
    return Liar()
class Sub(torch.Tensor):
    pass
def scale(x, k):
    return (x * k).as_subclass(Sub)
"""
    report = grade_toy(source)
    assert result(report, "adds").status == "failed" and "Liar" in result(report, "adds").message
    assert result(report, "scales").status == "failed"


def test_wire_round_trip_and_refusals():
    value = {"a": (1, 2.5, float("inf")), 3: [torch.arange(4), torch.device("cpu"), torch.float16, None],
             "m": torch.zeros(2, 3, device="meta")}
    tree, blob = wire.encode(value)
    back = wire.decode(tree, blob)
    assert back["a"] == (1, 2.5, float("inf")) and torch.equal(back[3][0], torch.arange(4))
    assert back[3][1:] == [torch.device("cpu"), torch.float16, None] and back["m"].device.type == "meta"

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    buf = io.BytesIO()
    torch.save([Evil()], buf)
    with pytest.raises(wire.WireError):
        wire.decode({"__tensor__": 0}, buf.getvalue())
    with pytest.raises(wire.WireError):
        wire.decode({"__nonsense__": 1}, b"")
    assert isinstance(wire.decode(*wire.encode(object())), wire.Opaque)


def test_keep_files_sees_what_the_child_wrote_and_cannot_change_a_verdict(worker, tmp_path):
    path = tmp_path / "exercise99.py"
    path.write_text(SOLUTION)
    seen: dict[str, list[str]] = {}

    def keep(name: str, workdir: Path) -> None:
        seen[name] = sorted(p.name for p in workdir.iterdir())
        raise OSError("disk full")  # a hook that breaks must not change the verdict

    report = grade(resolve("exercise99", TOY), path, worker=worker, keep_files=keep)
    assert statuses(report)["writes"] == "passed" and report.score == 5
    assert "answer.pt" in seen["writes"]  # the file save() wrote, at the path the check chose
    assert set(seen) == {"adds", "scales", "writes", "builds", "adds_again"}  # the skipped one has no folder


SHARED_CHECKS = '''
from pathlib import Path

from labkit.checks import CheckFailed, check, expect, fail, shared

RUNS = Path(__file__).with_name("runs.txt")  # the grader re-imports this file for each grade(): count on disk


@shared
def pair(sub):
    with RUNS.open("a") as f:
        f.write("x")
    a, b = sub.rng.randint(-100, 100), sub.rng.randint(-100, 100)
    got = sub.call("add", a, b)
    expect(got == a + b, f"add({a}, {b}) gave {got!r}")
    return [a, b]


def asked(sub, what):
    try:
        return sub.shared(pair)
    except CheckFailed as exc:
        fail(f"{what}: {exc}")


@check(points=1, title="first")
def first(sub):
    sub.note(f"judged {asked(sub, 'nothing for first to judge')}")


@check(points=1, title="second")
def second(sub):
    sub.note(f"judged {asked(sub, 'nothing for second to judge')}")
'''


def test_shared_work_runs_once_and_every_check_words_its_failure(worker, tmp_path):
    folder = tmp_path / "course" / "exercise99"
    folder.mkdir(parents=True)
    for name in ("exercise.toml", "README.md", "starter.py"):
        (folder / name).write_bytes((TOY / "exercise99" / name).read_bytes())
    (folder / "checks.py").write_text(SHARED_CHECKS)
    exercise = resolve("exercise99", folder.parent)

    def runs() -> int:
        return len((folder / "runs.txt").read_text())

    path = tmp_path / "exercise99.py"
    path.write_text(SOLUTION)
    both = grade(exercise, path, worker=worker)
    assert statuses(both) == {"first": "passed", "second": "passed"} and runs() == 1  # one run, two verdicts
    assert result(both, "first").message == result(both, "second").message.replace("second", "first")
    alone = grade(exercise, path, worker=worker, only=["second"])
    assert result(alone, "second").message == result(both, "second").message  # its own seed: same inputs
    path.write_text(SOLUTION.replace("return a + b", "return a - b"))
    wrong = grade(exercise, path, worker=worker)
    assert statuses(wrong) == {"first": "failed", "second": "failed"} and runs() == 3
    assert result(wrong, "first").message.startswith("nothing for first to judge: add(")
    assert result(wrong, "second").message.startswith("nothing for second to judge: add(")
    path.write_text(SOLUTION.replace("return a + b", "raise KeyError('no add here')"))
    crashed = grade(exercise, path, worker=worker)
    assert statuses(crashed) == {"first": "error", "second": "error"} and runs() == 4
    assert all("no add here" in r.message for r in crashed.results)
