"""Benchmark: what the hidden-character filter (``apps.kit.middleware.RevealHiddenMiddleware``)
costs the pages it guards, side by side in one run.

    .venv/bin/python bench/reveal_pages.py \\
        [--database-url postgres://postgres@127.0.0.1:5432/reveal_bench] [--rounds 5] [--loads 15]

The database named in ``--database-url`` is DROPPED and recreated (its name must contain
"bench"), migrated, and seeded as ``bench/web.py`` seeds its own (10,000 requests and grants
for the approver, 200 open grants for the requester). Each page is loaded in-process through
Django's test ``Client`` with a signed Pomerium assertion, in production settings (DEBUG
off), by two clients: one whose middleware chain includes the filter and one built without
it. Every round times ``--loads`` loads with each (the order alternates by round) and takes
the medians; the ratio is with ÷ without in that round. The table shows the median ratio
over the rounds with its min-max spread, and the filter alone on the page's bytes (median of
200 calls, µs): the page has no hidden character, which is the usual case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.web import PEOPLE, portal_env, recreate_database  # noqa: E402
from tests.support.jwks import JwksServer, SigningKey, claims_for, mint  # noqa: E402

FILTER = "apps.kit.middleware.RevealHiddenMiddleware"
PAGES = [
    ("dashboard (200 open grants)", "/", "requester"),
    ("admin: requests (10,000)", "/admin/access/accessrequest/", "approver"),
    ("admin: grants (10,000)", "/admin/access/grant/", "approver"),
]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/reveal_bench")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loads", type=int, default=15)
    args = parser.parse_args()

    jwks = JwksServer().start()
    key = jwks.publish(SigningKey.generate("ES256"))
    recreate_database(args.database_url)
    os.environ.update(portal_env(args.database_url, jwks.url, Path(tempfile.mkdtemp())))
    os.environ["DJANGO_SETTINGS_MODULE"] = "jitportal.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from apps.kit.text import reveal_bytes

    call_command("migrate", "--noinput", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    tokens = {
        who: mint(key, claims_for(sub, email, groups=groups, name=who.title(), lifetime=7200))
        for who, (sub, email, groups) in PEOPLE.items()
    }

    def client(who: str) -> Client:
        return Client(
            HTTP_X_POMERIUM_JWT_ASSERTION=tokens[who],
            HTTP_X_FORWARDED_PROTO="https",
            HTTP_HOST="127.0.0.1",
        )

    for who in PEOPLE:  # the first request creates the person, as in production
        assert client(who).get("/preferences", secure=True).status_code == 200
    subprocess.run(
        [sys.executable, "bench/web.py", "--seed", "--database-url", args.database_url],
        cwd=ROOT,
        check=True,
    )

    assert FILTER in settings.MIDDLEWARE
    print(f"{'page':32} {'with ms':>9} {'without ms':>10}  ratio (spread)       filter µs  bytes")
    for label, path, who in PAGES:
        with_filter = client(who)
        without = client(who)
        with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != FILTER]):
            # The chain is built on the first request and kept: this client has no filter.
            assert without.get(path, secure=True).status_code == 200
        page = with_filter.get(path, secure=True)
        assert page.status_code == 200
        for _ in range(2):  # warm both
            with_filter.get(path, secure=True)
            without.get(path, secure=True)
        ratios, medians = [], {"with": [], "without": []}
        for n in range(args.rounds):
            order = [("with", with_filter), ("without", without)]
            if n % 2:
                order.reverse()
            this_round = {}
            for name, c in order:
                times = []
                for _ in range(args.loads):
                    t0 = time.perf_counter()
                    c.get(path, secure=True)
                    times.append((time.perf_counter() - t0) * 1000)
                this_round[name] = statistics.median(times)
                medians[name].append(this_round[name])
            ratios.append(this_round["with"] / this_round["without"])
        content = page.content
        alone = []
        for _ in range(200):
            t0 = time.perf_counter()
            reveal_bytes(content)
            alone.append((time.perf_counter() - t0) * 1e6)
        print(
            f"{label:32} {statistics.median(medians['with']):9.1f} "
            f"{statistics.median(medians['without']):10.1f}  {spread(ratios):20} "
            f"{statistics.median(alone):9.0f}  {len(content)}"
        )
    jwks.stop()


if __name__ == "__main__":
    main()
