"""Benchmark: the portal's assertion check against a bare ``jwt.decode`` of the same token.

    .venv/bin/python bench/identity.py [--before /work/wt-web-before] [--rounds 5] [-n 4000]

Each round starts one child process per tree (this checkout, "after", and with
``--before`` an older checkout of the repository, "before"; the order rotates each round).
A child imports ``apps.accounts.assertion`` from its tree, serves the key from a loopback
JWKS server (``tests/support/jwks.py``), warms the key cache, then times in alternating
batches of 200:

* ``decode``  ``jwt.decode(token, key, algorithms=["ES256"], audience=..., issuer=...,
              options={"require": [...]})``: the floor, what any verification costs;
* ``verify``  ``assertion.verify(token)``: the header read, the key-cache lookup, the same
              decode, and the identity checks (email validation, groups).

The token is a realistic ES256 assertion (12 groups, about 1.2 KB). Figures are
microseconds per call (median of the batches); the ratio is verify / decode within the
same child; the table shows the median over rounds with the min-max spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def child(tree: Path, iterations: int) -> dict[str, float]:
    sys.path.insert(0, str(tree))
    sys.path.insert(1, str(ROOT))
    from tests.support.jwks import AUDIENCE, JwksServer, SigningKey, claims_for, mint

    server = JwksServer().start()
    key = server.publish(SigningKey.generate("ES256"))
    os.environ.update(
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="jitportal.settings",
        JWKS_ENDPOINT=server.url,
        POMERIUM_JWT_AUDIENCE=AUDIENCE,
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    import jwt

    from apps.accounts import assertion

    assert Path(assertion.__file__).resolve().is_relative_to(tree.resolve()), assertion.__file__
    groups = [f"team-{i:02d}-platform-engineering" for i in range(12)]
    claims = claims_for(
        "idp|bench", "bench.user@example.com", groups=groups, name="Bench User", lifetime=3600
    )
    token = mint(key, claims)
    public = jwt.PyJWK(key.jwk).key
    issuers = assertion.expected_issuers()
    assertion.verify(token)  # warm: fetch the JWKS once

    def decode() -> None:
        jwt.decode(
            token,
            public,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=issuers,
            leeway=60,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )

    def verify() -> None:
        assertion.verify(token)

    batch = 200
    samples: dict[str, list[float]] = {"decode": [], "verify": []}
    for _ in range(max(1, iterations // batch)):
        for name, fn in (("decode", decode), ("verify", verify)):
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            samples[name].append((time.perf_counter() - start) / batch * 1e6)
    server.stop()
    result = {name: statistics.median(values) for name, values in samples.items()}
    result["ratio"] = result["verify"] / result["decode"]
    result["token_bytes"] = len(token)
    return result


def run_child(tree: Path, iterations: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(tree), "-n", str(iterations)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child for {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float], fmt: str) -> str:
    mid, low, high = (format(v, fmt) for v in (statistics.median(values), min(values), max(values)))
    return f"{mid} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="an older checkout to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=4000, help="calls of each kind per child")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n)))
        return
    trees = {"after": ROOT}
    if args.before:
        trees = {"before": args.before, **trees}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    names = list(trees)
    for round_no in range(args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            result = run_child(trees[name], args.n)
            results[name].append(result)
            print(
                f"round {round_no + 1} {name}: decode {result['decode']:.1f} µs, "
                f"verify {result['verify']:.1f} µs, ratio {result['ratio']:.3f}",
                file=sys.stderr,
            )
    print("| tree | bare jwt.decode µs | assertion.verify µs | verify ÷ decode |")
    print("|---|---:|---:|---:|")
    for name, rows in results.items():
        cells: list[Any] = [
            spread([r["decode"] for r in rows], ".1f"),
            spread([r["verify"] for r in rows], ".1f"),
            spread([r["ratio"] for r in rows], ".3f"),
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        f"\n{args.rounds} rounds, {args.n} calls of each kind per child; token bytes "
        f"{int(results['after'][0]['token_bytes'])}."
    )


if __name__ == "__main__":
    main()
