"""The wheel carries the exercises and never the solutions; the metadata is consistent."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from wheel_venv import venv_with

from labkit.course.course import all_exercises
from labkit.grading.plan import load_checks

ROOT = Path(__file__).resolve().parent.parent


def test_exercise_points_equal_the_sum_of_their_checks():
    for ex in all_exercises():
        checks, _ = load_checks(ex)
        assert checks, f"{ex.id} has no checks"
        assert sum(c.points for c in checks) == ex.points, ex.id
        assert max((c.needs_gpus for c in checks), default=0) == ex.needs_gpus, ex.id
        assert all(c.title and c.hint for c in checks), f"{ex.id}: every check needs a title and a hint"
        assert ex.statement.is_file() and ex.starter.is_file() and len(ex.hints) >= 2, ex.id


def test_every_exercise_has_a_solution():
    for ex in all_exercises():
        assert (ROOT / "solutions" / ex.filename).is_file(), ex.id


@pytest.mark.slow
def test_wheel_has_exercises_and_no_solutions(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True)
    if build.returncode != 0 and "No matching distribution" in build.stderr:
        pytest.skip("hatchling cannot be fetched here: " + build.stderr.strip().splitlines()[-1])
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("labkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for ex in all_exercises():
        for part in ("exercise.toml", "README.md", "starter.py", "checks.py"):
            assert f"labkit/exercises/{ex.id}/{part}" in names
    assert not [n for n in names if "solution" in n.lower() or "__pycache__" in n]
    assert "labkit/cli/main.py" in names and any(n.endswith("entry_points.txt") for n in names)


def project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_file_matches_the_declared_license_and_metadata_is_complete():
    meta = project()
    assert meta["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in text
    assert meta["authors"] and all(a.get("name") for a in meta["authors"])
    trove = pytest.importorskip("trove_classifiers")
    assert meta["classifiers"] and not set(meta["classifiers"]) - trove.classifiers
    assert not [c for c in meta["classifiers"] if c.startswith("License ::")]  # PEP 639: the expression says it


def test_requirements_agree_with_the_constraints_file():
    from packaging.requirements import Requirement
    from packaging.version import Version

    from labkit.lab.pins import normalise, read_pins

    meta = project()
    requirements = [Requirement(r) for r in meta["dependencies"]]
    requirements += [Requirement(r) for extra in meta["optional-dependencies"].values() for r in extra]
    by_name = {normalise(r.name): r for r in requirements}
    pins = read_pins(ROOT / "constraints.txt")
    assert {"torch", "torchvision", "pyyaml"} <= set(pins)
    for name, pinned in pins.items():
        assert name in by_name, f"constraints.txt pins {name}, which no requirement names"
        assert by_name[name].specifier.contains(pinned), (name, pinned, str(by_name[name].specifier))
    for name in ("torch", "torchvision"):  # the checks are written for one minor release: the wheel says which
        pinned = Version(pins[name])
        spec = by_name[name].specifier
        assert not spec.contains(f"{pinned.major}.{pinned.minor + 1}.0"), spec
        assert not spec.contains(f"{pinned.major}.{pinned.minor - 1}.0"), spec


@pytest.mark.slow
def test_make_dist_builds_an_sdist_and_a_wheel_that_installs_and_behaves(tmp_path):
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dist = tmp_path / "dist"
    # -o: the venv is taken as up to date (the test must not reinstall the venv it runs in)
    made = subprocess.run(["make", "-o", ".venv/.installed", "dist", f"DIST={dist}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    (wheel,), (sdist,) = dist.glob("labkit-*.whl"), dist.glob("labkit-*.tar.gz")
    import tarfile

    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("/LICENSE") for m in members) and any(m.endswith("/constraints.txt") for m in members)
    assert not [m for m in members if "/solutions/" in m]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert zf.read("labkit/constraints.txt") == (ROOT / "constraints.txt").read_bytes()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata and "Requires-Dist: torch<2.15,>=2.14.1" in metadata
    assert "Requires-Dist: pyyaml>=6.0.1" in metadata and "Requires-Dist: torchvision<0.30,>=0.29.1;" in metadata

    python, _site = venv_with(wheel, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_EXERCISES", "LABKIT_COURSE",
                                                            "LABKIT_SOLUTIONS")}
    probe = subprocess.run([str(python), "-c", "import labkit.lab.pins as p; print(p.constraints_file()); "
                            "print(p.read_pins()['torch'])"], capture_output=True, text=True, env=env, cwd=tmp_path)
    where, pinned = probe.stdout.split()
    from labkit.lab.pins import read_pins

    assert where.endswith("site-packages/labkit/constraints.txt"), probe.stdout + probe.stderr
    assert pinned == read_pins(ROOT / "constraints.txt")["torch"]  # doctor compares with the wheel's own copy
    new = subprocess.run([str(python), "-m", "labkit", "dev", "new", "exercise9", "--title", "T"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert new.returncode == 2 and "is inside the installed labkit" in new.stderr, new.stdout + new.stderr
    assert "Traceback" not in new.stderr
    assert not list(Path(where).parent.glob("exercises/exercise9"))
    completion = subprocess.run([str(python), "-m", "labkit"], capture_output=True, text=True, cwd=tmp_path,
                                env={**env, "_LABKIT_COMPLETE": "bash_complete", "COMP_WORDS": "labkit start exercise1",
                                     "COMP_CWORD": "2"}, timeout=60)
    assert completion.stdout.split() == ["plain,exercise1"], completion.stdout + completion.stderr
