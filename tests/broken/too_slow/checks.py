"""Checks for too_slow, broken on purpose (the solution takes most of the 1 s limit)."""

from labkit.checks import check, expect


@check(points=1, title="add works", hint="return a + b")
def adds(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")
