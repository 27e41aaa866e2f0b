"""sandbox.modes: which sandboxes work here (for `labkit doctor`), and `labkit grade`'s choice, which never falls
back to no sandbox on its own."""

from __future__ import annotations

import pytest

from labkit.sandbox import bwrap, container, modes
from labkit.sandbox.errors import SandboxError


@pytest.fixture
def nothing_works(monkeypatch):
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "bubblewrap is not installed (apt-get install bubblewrap)")
    monkeypatch.setattr(container, "works", lambda: "neither podman nor docker is installed")
    monkeypatch.setattr(modes, "user_works", lambda: "only root can run the worker as another user")


def test_report_lists_every_sandbox_strongest_first_with_the_reason(nothing_works):
    report = modes.sandbox_report()
    assert [s.name for s in report] == ["container", "bwrap", "user", "none"]
    assert [s.works for s in report] == [False, False, False, True]
    assert report[1].why == "bubblewrap is not installed (apt-get install bubblewrap)"
    assert report[3].why == ""


def test_report_on_this_machine_agrees_with_the_probes():
    by_name = {s.name: s for s in modes.sandbox_report()}
    assert by_name["bwrap"].works == (bwrap.bwrap_works() == "")
    assert by_name["bwrap"].why == bwrap.bwrap_works()
    assert by_name["none"].works


def test_class_grading_refuses_rather_than_running_unconfined(nothing_works):
    with pytest.raises(SandboxError) as caught:
        modes.for_class("auto")
    message = str(caught.value)
    assert "no sandbox works here" in message and "--sandbox none" in message and "make image" in message
    assert modes.for_class("none") == "none"  # asked for by name: allowed
    with pytest.raises(SandboxError, match="--sandbox bwrap: bubblewrap is not installed"):
        modes.for_class("bwrap")


def test_student_checks_keep_their_fallback(nothing_works):
    assert modes.choose("auto") == "none"  # `labkit check` on a laptop is feedback: it still runs
