"""Checks for check_fields, broken on purpose: checks without a hint, a title or points."""

from labkit.checks import check, expect


@check(points=1, title="add works")  # no hint
def adds(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")


@check(points=1, title="", hint="return a + b")
def untitled(sub):
    expect(sub.call("add", 1, 1) == 2, "add(1, 1) should be 2")


@check(points=0, title="add is worth nothing", hint="return a + b")
def pointless(sub):
    expect(sub.call("add", 0, 0) == 0, "add(0, 0) should be 0")
