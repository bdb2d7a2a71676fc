"""Run one bench script from two checkouts, interleaved, so both see the same machine.

    .venv/bin/python bench/side_by_side.py --before REV --rounds 3 -- \
        bench/zero_sync.py --database-url postgres://postgres@127.0.0.1:5432/zero_bench \
        --broker redis://127.0.0.1:6379/3

``--before REV`` is checked out (``git worktree``) beside this checkout
(``../<name>-bench/``, or ``$BENCH_SCRATCH``) and gets its own virtualenv from its own
pins (created once, reused). Rounds alternate: before, after, before, after, ... Each run's
output is printed whole under a heading naming its checkout and round, and saved under
``bench/results/raw/side-by-side/``; reading the lines into a table is left to the reader, since
the two checkouts' scripts may word them differently.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Beside the checkout, not inside it: linters and tests must not see the other tree.
SCRATCH = Path(os.environ.get("BENCH_SCRATCH", str(ROOT.parent / f"{ROOT.name}-bench")))


def checkout(rev: str) -> Path:
    where = SCRATCH / f"rev-{rev[:12]}"
    if not where.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(where), rev], cwd=ROOT, check=True
        )
    venv = where / ".venv"
    if not (venv / ".installed").exists():
        subprocess.run(["make", ".venv/.installed"], cwd=where, check=True)
    return where


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...]")
    args = parser.parse_args()
    script = [a for a in args.script if a != "--"]
    if not script:
        parser.error("give the bench script after --")
    trees = {"before": checkout(args.before), "after": ROOT}
    out_dir = ROOT / "bench" / "results" / "raw" / "side-by-side"
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for n in range(1, args.rounds + 1):
        for label, tree in trees.items():
            python = tree / ".venv" / "bin" / "python"
            done = subprocess.run(
                [str(python), *script], cwd=tree, capture_output=True, text=True, check=False
            )
            text = done.stdout + (
                f"\n[exit {done.returncode}]\n{done.stderr[-2000:]}" if done.returncode else ""
            )
            (out_dir / f"{Path(script[0]).stem}-{label}-{n}.txt").write_text(text)
            print(f"\n===== {label} ({tree.name}), round {n} =====\n{text}", flush=True)
            failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
