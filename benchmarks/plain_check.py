"""The plain-script baseline: what one small check would cost as a script a student runs by hand.

`python benchmarks/plain_check.py FILE` imports torch and the file, then runs exercise2's `replica_sizes` cases
(the fixed ones and eight drawn ones) against torch's own `chunk` and prints how many agreed; exit 1 on a
mismatch. No labkit, no sandbox, no child: the floor one `labkit check --only replica_sizes` is compared with.
"""

from __future__ import annotations

import importlib.util
import random
import sys

import torch


def main(path: str) -> int:
    spec = importlib.util.spec_from_file_location("exercise2", path)
    student = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(student)
    rng = random.Random(0)
    cases = [(30, 2), (10, 3), (10, 8), (3, 8), (100, 1), (1, 1)]
    cases += [(rng.randint(1, 512), rng.randint(2, 16)) for _ in range(8)]
    wrong = [(b, n) for b, n in cases
             if student.replica_batch_sizes(b, n) != [len(c) for c in torch.arange(b).chunk(n)]]
    print(f"{len(cases) - len(wrong)}/{len(cases)} cases agree" + (f"; wrong: {wrong}" if wrong else ""))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
