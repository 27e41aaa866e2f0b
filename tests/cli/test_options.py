"""Shell completion of exercise names (click's shell_complete), as bash, zsh and fish ask for it."""

from __future__ import annotations

import os
import subprocess
import sys

from labkit.course.course import all_exercises

LABKIT = [sys.executable, "-m", "labkit"]


def complete(shell: str, words: str) -> str:
    # bash and zsh pass the index of the word being completed; fish passes the words before it and the word itself
    cword = words.split(" ")[-1] if shell == "fish" else str(len(words.split()) - (0 if words.endswith(" ") else 1))
    before = words.rsplit(" ", 1)[0] if shell == "fish" else words
    env = {**os.environ, "_LABKIT_COMPLETE": f"{shell}_complete", "COMP_WORDS": before, "COMP_CWORD": cword}
    done = subprocess.run([sys.executable, "-c", "from labkit.cli.main import main; main()"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_completes_exercise_ids_for_commands_that_take_one():
    ids = [ex.id for ex in all_exercises()]
    assert complete("bash", "labkit start ").split() == [f"plain,{i}" for i in ids]
    assert complete("bash", "labkit hint exercise1").split() == ["plain,exercise1"]
    assert complete("bash", "labkit grade subs -e exercise2").split() == ["plain,exercise2"]
    assert complete("bash", "labkit dev check exercise").split() == [f"plain,{i}" for i in ids]
    assert complete("bash", "labkit start nothing-like-it").split() == []


def test_zsh_and_fish_get_the_same_ids():
    assert "exercise3" in complete("zsh", "labkit start exercise3").split("\n")
    assert complete("fish", "labkit start exercise3").split() == ["plain,exercise3"]


def test_the_completion_scripts_are_what_the_readme_says_to_source():
    for shell in ("bash", "zsh", "fish"):
        env = {**os.environ, "_LABKIT_COMPLETE": f"{shell}_source"}
        done = subprocess.run([sys.executable, "-c", "from labkit.cli.main import main; main()"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "_LABKIT_COMPLETE" in done.stdout, (shell, done.stderr)
        assert "import torch" not in done.stderr


def test_completion_imports_no_torch():
    code = ("import os, sys; os.environ.update(_LABKIT_COMPLETE='bash_complete', COMP_WORDS='labkit start ex', "
            "COMP_CWORD='2')\nfrom labkit.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "False", done.stderr
