"""Checks for points_mismatch, broken on purpose (points = 5 but the checks sum to 1)."""

from labkit.checks import check, expect


@check(points=1, title="add works", hint="return a + b")
def adds(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")
