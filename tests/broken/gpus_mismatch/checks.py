"""Checks for gpus_mismatch, broken on purpose (needs_gpus = 2 but no check needs a GPU)."""

from labkit.checks import check, expect


@check(points=1, title="add works", hint="return a + b")
def adds(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")
