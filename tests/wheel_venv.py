"""A built wheel in a fresh venv that borrows this venv's packages (torch): what a student or grader installs."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(tmp_path: Path) -> Path:
    """labkit's wheel, built from this checkout into tmp_path/dist (skips where hatchling cannot be fetched)."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(ROOT)], capture_output=True, text=True)
    if build.returncode != 0 and "No matching distribution" in build.stderr:
        pytest.skip("hatchling cannot be fetched here: " + build.stderr.strip().splitlines()[-1])
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("labkit-*.whl")
    return wheel


def venv_with(wheel: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A venv holding `wheel` in its own site-packages, this venv's packages after it: (its python, its site)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True)
    # torch, click, pytest: borrowed from this venv, after the wheel (a plain path line: its .pth files, the
    # editable checkout's included, are not read)
    (site / "zz-borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


def fresh_venv(tmp_path: Path) -> tuple[Path, Path]:
    """This checkout's wheel in a fresh venv: (its python, its site-packages)."""
    return venv_with(build_wheel(tmp_path), tmp_path)
