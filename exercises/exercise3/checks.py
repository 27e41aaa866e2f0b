"""Checks for exercise3: CUDA_DEVICE_ORDER and CUDA_VISIBLE_DEVICES, judged without a GPU where possible."""

from __future__ import annotations

import os

from labkit.checks import StudentError, check, expect, expect_equal, fail
from labkit.i18n import _
from labkit.recipe import Program, cuda_initialized, python, ref

ORDER, MASK = "CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES"
MARK = "LABKIT_MARK"  # a variable the caller sets; the child must inherit it with the rest of the environment
SHOWN = (MASK, ORDER, MARK)  # what show_env's script prints, one line each, in an order drawn per call
COMPLETED = "subprocess.CompletedProcess"
COUNT_GPUS = "import torch; print(torch.cuda.device_count())"


def mask_text(visible: list[int]) -> str:
    return ",".join(str(i) for i in visible)


def random_mask(rng, low: int = 1) -> list[int]:
    return rng.sample(range(16), rng.randint(low, 6))


def spaced(rng, visible: list[int]) -> str:
    """The mask as text with random spaces around the entries, which CUDA accepts."""
    return ",".join(rng.choice(["", " "]) + str(i) + rng.choice(["", " "]) for i in visible)


def show_env(rng) -> tuple[str, list[str]]:
    """A script that prints the three variables, in a drawn order: its output cannot be made up without running it."""
    names = rng.sample(SHOWN, len(SHOWN))
    return "import os; " + "; ".join(f"print(os.environ.get({n!r}))" for n in names), names


def run_child(sub, script: str, visible: list[int], env: dict | None = None, attrs: bool = True) -> dict:
    """run_on_gpus([python, '-c', script], visible) in the child, after setting `env` (None: remove) there.

    "kind": the returned object's class; "changed": what the call did to the caller's os.environ (the step's
    env_changed); with `attrs`, and only for a CompletedProcess, its stdout (and its class), stderr, returncode.
    """
    def calling() -> Program:
        return Program().call("run_on_gpus", [python(), "-c", script], visible, env=env, save="proc")

    first = sub.run(calling().report("proc", "kind"))
    info = {"kind": first["values"]["proc"], "changed": first["steps"][0]["env_changed"], "stdout": None,
            "stdout_kind": {"name": "nothing"}, "stderr": "", "returncode": None}
    if not attrs or COMPLETED not in info["kind"]["mro"]:  # a str has no .stdout to read
        return info
    prog = calling()  # run again from the same environment: the first run's output is not read
    for attr in ("stdout", "stderr", "returncode"):
        prog.let(attr, ref("proc", attr)).report(attr)
    got = sub.run(prog.report("stdout", "kind", key="stdout_kind"))["values"]
    err = got["stderr"]
    info.update(stdout=got["stdout"] if isinstance(got["stdout"], str) else None, stdout_kind=got["stdout_kind"],
                stderr=err[-500:] if isinstance(err, str) else "",
                returncode=got["returncode"] if type(got["returncode"]) is int else None)
    return info


def raised(sub, prog: Program) -> StudentError | None:
    """The exception a student function raised while `prog` ran, or None when the program completed."""
    try:
        sub.run(prog)
    except StudentError as exc:
        return exc
    return None


# --- checks ------------------------------------------------------------------------------

def judge_env(got, visible, order: str, call: str) -> None:
    expect(type(got) is dict, f"{call} should return a dict of strings, got {type(got).__name__}")
    expect(ORDER in got, f"{call}: CUDA_DEVICE_ORDER is missing; without it CUDA numbers GPUs FASTEST_FIRST, "
                         "not in nvidia-smi's PCI bus order, so 'GPU 0' may be another card")
    if visible is None:
        expect(MASK not in got or got[MASK] != "", f"{call} set CUDA_VISIBLE_DEVICES='': an empty mask hides every "
                                                   "GPU; None means all GPUs, so leave the variable out")
        expect(MASK not in got, f"{call} should leave CUDA_VISIBLE_DEVICES out (None means all GPUs), "
                                f"got {got.get(MASK)!r}")
    elif not visible:
        expect(got.get(MASK) == "", f"{call} should set CUDA_VISIBLE_DEVICES='' (an empty list: no GPU at all), "
                                    f"got {got.get(MASK)!r}; leaving it out would show every GPU")
    want = {ORDER: order} if visible is None else {ORDER: order, MASK: mask_text(visible)}
    expect_equal(got, want, call)


@check(points=2, title="cuda_env builds the variables for None, [] and lists",
       hint="None -> no CUDA_VISIBLE_DEVICES key; [] -> ''; [5, 6, 7] -> '5,6,7'; always CUDA_DEVICE_ORDER.",
       title_zh="cuda_env 为 None、[] 和列表构建环境变量",
       hint_zh="None -> 没有 CUDA_VISIBLE_DEVICES 键；[] -> ''；[5, 6, 7] -> '5,6,7'；CUDA_DEVICE_ORDER 总是存在。")
def cuda_env_dict(sub):
    drawn = sub.rng.choice(["PCI_BUS_ID", "FASTEST_FIRST"])
    cases = [(None, None), ([], None), ([5, 6, 7], None), ([1, 0], "FASTEST_FIRST"), (random_mask(sub.rng), drawn)]
    for visible, order in cases:
        if order is None:  # the default order must be PCI_BUS_ID
            judge_env(sub.call("cuda_env", visible), visible, "PCI_BUS_ID", f"cuda_env({visible!r})")
        else:
            judge_env(sub.call("cuda_env", visible, order), visible, order, f"cuda_env({visible!r}, {order!r})")


@check(points=2, title="physical_index maps a logical GPU through the mask",
       hint="Split the mask on ',', turn each entry into an int, and return the entry at position `logical`.",
       title_zh="physical_index 通过掩码映射逻辑 GPU",
       hint_zh="按 ',' 拆分掩码，把每个条目转换为 int，并返回位置 `logical` 处的条目。")
def physical_index_maps(sub):
    cases = [(1, "5,6,7"), (0, "5,6,7"), (2, " 5, 6 ,7 "), (0, "3")]
    for _round in range(3):
        visible = random_mask(sub.rng)
        cases.append((sub.rng.randrange(len(visible)), spaced(sub.rng, visible)))
    for logical, text in cases:
        want = [int(p) for p in text.split(",")][logical]
        got = sub.call("physical_index", logical, text)
        call = f"physical_index({logical}, {text!r})"
        if got == logical != want:
            fail(f"{call} returned {got}, expected {want}: you returned the logical index unchanged; a process "
                 f"started with CUDA_VISIBLE_DEVICES={text!r} calls physical GPU {want} 'cuda:{logical}'")
        expect_equal(got, want, call)


@check(points=2, title="physical_index: ValueError for bad masks, missing GPUs",
       hint="Validate the whole mask (every entry an int, none negative, none repeated) and 0 <= logical < len.",
       title_zh="physical_index：对非法掩码、不存在的 GPU 抛出 ValueError",
       hint_zh="校验整个掩码（每个条目都是整数，没有负数，没有重复）以及 0 <= logical < len。")
def physical_index_rejects(sub):
    visible = random_mask(sub.rng, low=2)
    twice = visible + [sub.rng.choice(visible)]
    cases = [(0, "5,a,7", "a non-integer entry"), (0, "-1,2", "a negative GPU index"),
             (1, "2,-3", "a negative GPU index"), (0, "4,4", "a GPU listed twice"),
             (3, "5,6,7", "a logical index past the end"), (0, "", "an empty mask (no GPU visible)"),
             (-1, "5,6,7", "a negative logical index (Python's ids[-1] would quietly pick the last GPU)"),
             (0, mask_text(twice), "a GPU listed twice"),
             (len(visible) + sub.rng.randrange(3), mask_text(visible), "a logical index past the end")]
    for logical, text, why in cases:
        err = sub.raises("physical_index", logical, text)
        call = f"physical_index({logical}, {text!r})"
        expect(err is not None, f"{call} returned a value; expected ValueError for {why}")
        if err.is_a("NotImplementedError"):
            raise err
        expect(err.is_a("ValueError"), f"{call} raised {err.type_name}; expected ValueError for {why}")


@check(points=2, title="run_on_gpus: the child sees the mask, its output comes back",
       hint="subprocess.run(argv, env={**os.environ, **cuda_env(visible)}, capture_output=True, text=True)",
       title_zh="run_on_gpus：子进程能看到掩码，其输出被返回",
       hint_zh="使用 subprocess.run(argv, env={**os.environ, **cuda_env(visible)}, capture_output=True, text=True)")
def run_sees_mask(sub):
    cases = [(random_mask(sub.rng), {}), ([], {}), (random_mask(sub.rng), {MASK: "9,8", ORDER: "FASTEST_FIRST"})]
    # The output is judged here against a script drawn for this call (the order of its lines: a guess passes all
    # three cases once in 216), with a mark only this call sets: printing it without running the script means
    # parsing and imitating it, more work than subprocess.run. The class is the child's word (a look-alike could
    # borrow the name) and earns nothing alone.
    for visible, preset in cases:
        mark = f"mark-{sub.rng.randrange(10**9)}"
        script, names = show_env(sub.rng)
        info = run_child(sub, script, visible, {MASK: None, ORDER: None, **preset, MARK: mark})
        call = f"run_on_gpus(argv, {visible!r})"
        expect(COMPLETED in info["kind"]["mro"], f"{call} should return subprocess.run's CompletedProcess, got "
               f"{info['kind']['name']}")
        expect(info["stdout"] is not None, f"{call}: the child's output should come back as text in .stdout "
                                           f"(capture_output=True, text=True), got {info['stdout_kind']['name']}")
        lines = info["stdout"].splitlines()
        expect(len(lines) == 3, f"{call}: the child printed {info['stdout']!r} (exit status {info['returncode']}, "
                                f"stderr {info['stderr']!r}); expected three lines")
        printed = dict(zip(names, lines, strict=True))
        seen, order, inherited = (printed[n] for n in SHOWN)
        shown = "unset" if seen == "None" else repr(seen)  # the child prints None for a missing variable
        note = f" (the caller had CUDA_VISIBLE_DEVICES={preset[MASK]!r}: your mask must override it)" if preset else ""
        expect(seen == mask_text(visible),
               f"{call}: the child saw CUDA_VISIBLE_DEVICES {shown}, expected {mask_text(visible)!r}{note}")
        expect(order == "PCI_BUS_ID", f"{call}: the child saw CUDA_DEVICE_ORDER={order!r}, expected 'PCI_BUS_ID' "
                                      "so that indices match nvidia-smi")
        expect(inherited == mark, f"{call}: the child lost the rest of the environment ({MARK} set by the caller "
                                  "was missing); env= replaces everything, so start from a copy of os.environ")


@check(points=2, title="run_on_gpus leaves the caller's os.environ unchanged",
       hint="Build a new dict for the child (env={**os.environ, ...}); never assign to os.environ here.",
       title_zh="run_on_gpus 不改变调用方的 os.environ",
       hint_zh="为子进程构建一个新的 dict（env={**os.environ, ...}）；不要在这里对 os.environ 赋值。")
def run_keeps_caller_env(sub):
    for visible, preset in [(random_mask(sub.rng), {}), ([], {MASK: "0", ORDER: "FASTEST_FIRST"})]:
        # The step's env_changed is the child's word; keeping os.environ alone is the one honest line (a copy).
        env = {MASK: None, ORDER: None, **preset, MARK: f"mark-{sub.rng.randrange(10**9)}"}
        info = run_child(sub, show_env(sub.rng)[0], visible, env, attrs=False)
        changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in info["changed"].items())
        expect(not info["changed"], f"run_on_gpus({visible!r}) changed the caller's os.environ ({changes}); "
                                    "every later child and this process's own CUDA would inherit the mask. "
                                    "Give the child its own copy of the environment")


@check(points=1, title="restrict_gpus sets both variables in this process",
       hint="os.environ.update(cuda_env(visible)) once you know CUDA has not started.",
       title_zh="restrict_gpus 在当前进程中设置这两个变量",
       hint_zh="在确认 CUDA 尚未启动之后，执行 os.environ.update(cuda_env(visible))。")
def restrict_sets(sub):
    for visible, preset in [(random_mask(sub.rng), {MASK: "0"}), ([], {}), ([5, 6, 7], {ORDER: "FASTEST_FIRST"})]:
        # Both facts are the child's word (labkit's record of os.environ, torch's flag): making them true is the
        # one honest line os.environ.update(...), while faking them means patching labkit's recorders or torch.
        env = {MASK: None, ORDER: None, **preset}
        prog = Program().call("restrict_gpus", visible, env=env).let("started", cuda_initialized())
        run = sub.run(prog.report("started"))
        after = {k: run["steps"][0]["env_changed"].get(k, [None, env[k]])[1] for k in (MASK, ORDER)}
        got = {"mask": after[MASK], "order": after[ORDER], "initialised": run["values"]["started"]}
        call = f"restrict_gpus({visible!r})"
        expect(got["mask"] == mask_text(visible), f"after {call}, os.environ['CUDA_VISIBLE_DEVICES'] is "
                                                  f"{got['mask']!r}, expected {mask_text(visible)!r}")
        expect(got["order"] == "PCI_BUS_ID", f"after {call}, os.environ['CUDA_DEVICE_ORDER'] is {got['order']!r}, "
                                             "expected 'PCI_BUS_ID'")
        expect(not got["initialised"], f"{call} initialised CUDA itself, which fixes the GPU list before the "
                                       "mask can apply")


@check(points=2, title="restrict_gpus raises RuntimeError once CUDA is initialised",
       hint="if torch.cuda.is_initialized(): raise RuntimeError(...) — the mask would be ignored silently.",
       title_zh="一旦 CUDA 已初始化，restrict_gpus 就抛出 RuntimeError",
       hint_zh="if torch.cuda.is_initialized(): raise RuntimeError(...) —— 否则掩码会被悄无声息地忽略。")
def restrict_too_late(sub):
    visible = random_mask(sub.rng)
    call = f"restrict_gpus({visible!r})"
    # Before CUDA starts the same call must return: raising always is not knowing when it is too late.
    err = raised(sub, Program().call("restrict_gpus", visible, env={MASK: None, ORDER: None}))
    if err is not None and err.is_a("NotImplementedError"):
        raise err
    expect(err is None, f"{call} raised {err.type_name if err else ''} although CUDA had not started: raise only "
           "when torch.cuda.is_initialized() is True, and set the variables otherwise")
    marked = Program().pretend_cuda_initialized().let("started", cuda_initialized()).report("started")
    if sub.run(marked)["values"]["started"] is not True:  # labkit's problem, reported as such, never the student's
        raise RuntimeError("the check could not mark CUDA as initialised in the child with this torch")
    err = raised(sub, Program().pretend_cuda_initialized().call("restrict_gpus", visible))
    expect(err is not None, call + _(" returned normally although torch.cuda.is_initialized() was True: the "
                                     "variables were set after CUDA initialised, which read them once at start-up, so "
                                     "the new mask is silently ignored. Raise RuntimeError instead"))
    if err.is_a("NotImplementedError"):
        raise err
    expect(err.is_a("RuntimeError"), f"{call} raised {err.type_name} once CUDA was initialised; expected RuntimeError")


@check(points=2, title="a child of run_on_gpus sees as many GPUs as the mask lists", needs_gpus=1,
       timeout=120, hint="The child's torch.cuda.device_count() is the length of the mask it inherited.",
       title_zh="run_on_gpus 的子进程看到的 GPU 数量与掩码列出的数量相同",
       hint_zh="子进程中的 torch.cuda.device_count() 等于它继承的掩码的长度。")
def gpu_count_in_child(sub):
    ours = os.environ.get(MASK)  # the grader's own mask, if any, names the GPUs this machine lends us
    try:
        physical = [int(p) for p in ours.split(",")] if ours else list(range(sub.gpus))
    except ValueError:
        physical = list(range(sub.gpus))
    cases = [([physical[0]], 1), ([], 0)] + ([([physical[1], physical[0]], 2)] if len(physical) > 1 else [])
    for visible, want in cases:
        info = run_child(sub, COUNT_GPUS, visible)
        got = info["stdout"].strip().splitlines()[-1:] if info["stdout"] else []
        why = ("; the child saw every GPU: pass env={**os.environ, **cuda_env(visible)} so that the mask reaches it"
               if got == [str(len(physical))] and want != len(physical) else "")
        expect(got == [str(want)], f"run_on_gpus(['python', '-c', {COUNT_GPUS!r}], {visible!r}): the child printed "
                                   f"{info['stdout']!r} (stderr {info['stderr']!r}); expected {want}{why}")

