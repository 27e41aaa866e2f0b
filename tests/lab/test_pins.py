"""labkit.lab.pins: the installed torch against constraints.txt's pin (what `labkit doctor` warns about)."""

from __future__ import annotations

from pathlib import Path

from labkit.lab import pins

ROOT = Path(__file__).resolve().parents[2]


def test_reads_the_checkouts_pins():
    assert pins.constraints_file() == ROOT / "constraints.txt"
    got = pins.read_pins()
    assert set(got) >= {"torch", "torchvision", "pyyaml"} and got["torch"].count(".") == 2


def test_read_pins_skips_comments_and_normalises_names(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("# the pins\nPyYAML==6.0.3  # for exports\ntorch == 2.14.1\nnumpy>=2\n\n"
                    "some_pkg==1.0 ; python_version>'3'\n")
    assert pins.read_pins(path) == {"pyyaml": "6.0.3", "torch": "2.14.1", "some-pkg": "1.0"}
    assert pins.read_pins(tmp_path / "missing.txt") == {}


def test_drift_is_a_different_release_not_a_build_label():
    pinned = {"torch": "2.14.1"}
    same = {"torch": "2.14.1+cpu"}
    assert pins.drift(pins=pinned, installed=same.get) == []
    assert pins.drift(pins=pinned, installed={"torch": "2.14.1+cu126"}.get) == []
    (older,) = pins.drift(pins=pinned, installed={"torch": "2.11.0+cu130"}.get)
    assert (older.name, older.pinned, older.installed) == ("torch", "2.14.1", "2.11.0+cu130")
    assert older.message == ('torch 2.11.0+cu130 is installed but the course pins 2.14.1 (constraints.txt): results '
                             'and timings may differ from the grader\'s; pip install "torch==2.14.1"')
    assert pins.drift(pins=pinned, installed=lambda name: None) == []  # not installed: doctor reports that itself
    assert pins.drift(pins={}, installed=same.get) == []  # nothing pinned: nothing to compare


def test_torch_pin_warning_for_this_venv(monkeypatch):
    installed = pins.installed_version("torch")
    want = "" if pins.release(installed) == pins.read_pins()["torch"] else "is installed but the course pins"
    assert want in pins.torch_pin_warning()
    monkeypatch.setattr(pins, "installed_version", lambda name: "2.0.0")
    assert pins.torch_pin_warning().startswith("torch 2.0.0 is installed but the course pins")
