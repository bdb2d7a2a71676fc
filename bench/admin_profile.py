"""In-process timing (and optionally a profile) of the admin changelists, as bench/web.py's people.

    .venv/bin/python bench/admin_profile.py \\
        --database-url postgres://postgres@127.0.0.1:5432/h_admin [--repeat 10] [--profile N]

Production settings (DEBUG off, as ``bench/web.py``'s ``portal_env``) against an already
seeded database (``bench/web.py`` seeds one; a copy: ``CREATE DATABASE x TEMPLATE web_bench``).
Each page is loaded through Django's test ``Client`` with a signed Pomerium assertion, warmed
three times, then timed ``--repeat`` times: the median and minimum service time in ms and the
number of SQL queries per load. ``--profile N`` prints cProfile's top functions for page N.
Nothing is written to the database beyond what a page view writes (the session, people).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.web import PAGES, PEOPLE, portal_env  # noqa: E402
from tests.support.jwks import JwksServer, SigningKey, claims_for, mint  # noqa: E402

# Query strings each page is also saved with (--dump): paging, sorting, searching, filtering.
VARIANTS = ["", "?p=2", "?o=2", "?o=-3.2", "?q=person1", "?q=zzz-nothing", "?p=2&q=app"]
MASK = re.compile(rb'((?:name="csrfmiddlewaretoken" value=|nonce=)")[^"]+"')


def _pages(spec: str) -> list[tuple[int, tuple[str, str, str | None]]]:
    """The pages to time: numbers index ``PAGES``; ``PATH@PERSON`` is any other path, numbered
    from 100 in the order given."""
    chosen = []
    for i, item in enumerate(spec.split(",")):
        if "@" in item:
            path, who = item.rsplit("@", 1)
            chosen.append((100 + i, (path, path, who)))
        else:
            chosen.append((int(item), PAGES[int(item)]))
    return chosen


def _wsgi_times(args: argparse.Namespace, tokens: dict[str, str]) -> None:
    """Median CPU (this thread's) and wall time per request through ``jitportal.wsgi``,
    cookies kept as a browser keeps them, after gunicorn's ``gc.freeze`` of the loaded app."""
    import gc
    import io
    from http.cookies import SimpleCookie

    from jitportal.wsgi import application

    gc.collect()
    gc.freeze()
    for number, (label, path, who) in _pages(args.pages):
        path += args.query
        jar: SimpleCookie = SimpleCookie()

        def call(path: str = path, who: str | None = who, jar: SimpleCookie = jar) -> str:
            route, _, query = path.partition("?")
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": route,
                "QUERY_STRING": query,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "443",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_X_FORWARDED_PROTO": "https",
                "HTTP_X_POMERIUM_JWT_ASSERTION": tokens[who or "requester"],
                "HTTP_COOKIE": "; ".join(f"{k}={m.value}" for k, m in jar.items()),
                "REMOTE_ADDR": "127.0.0.1",
                "wsgi.input": io.BytesIO(b""),
                "wsgi.errors": sys.stderr,
                "wsgi.url_scheme": "https",
                "wsgi.version": (1, 0),
                "wsgi.multithread": True,
                "wsgi.multiprocess": True,
                "wsgi.run_once": False,
            }
            status = []

            def start_response(code: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
                status.append(code)
                for name, value in headers:
                    if name.lower() == "set-cookie":
                        jar.load(value)

            b"".join(application(environ, start_response))
            return status[0]

        for _ in range(3):
            assert call().startswith("200"), (path, call())
        cpu, wall = [], []
        for _ in range(args.repeat):
            c0, w0 = time.thread_time(), time.perf_counter()
            call()
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        print(
            f"{number} {label:32} CPU median {statistics.median(cpu):7.2f} ms "
            f"min {min(cpu):7.2f} ms  wall median {statistics.median(wall):7.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--pages",
        default="2,3,4,5,6",
        help="page numbers of bench/web.py's PAGES, or PATH@PERSON (e.g. /preferences@requester)",
    )
    parser.add_argument("--profile", type=int, help="profile this page number")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--query", default="", help="appended to every page's path, e.g. ?q=x")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--sql-chars", type=int, default=400)
    parser.add_argument(
        "--dump", type=Path, help="save each page (and VARIANTS of it) here, tokens masked"
    )
    parser.add_argument(
        "--wsgi",
        action="store_true",
        help="time CPU and wall per request through the WSGI handler itself (no test client, "
        "whose template signals cost as much as a small page), with gunicorn's gc.freeze",
    )
    args = parser.parse_args()

    jwks = JwksServer().start()
    key = jwks.publish(SigningKey.generate("ES256"))
    static = Path(tempfile.mkdtemp(prefix="admin-profile-"))
    os.environ.update(portal_env(args.database_url, jwks.url, static))
    os.environ["DJANGO_SETTINGS_MODULE"] = "jitportal.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    tokens = {
        who: mint(key, claims_for(sub, email, groups=groups, name=who.title(), lifetime=7200))
        for who, (sub, email, groups) in PEOPLE.items()
    }
    if args.wsgi:
        _wsgi_times(args, tokens)
        jwks.stop()
        return
    for number, (label, path, who) in _pages(args.pages):
        path += args.query
        client = Client(
            HTTP_X_POMERIUM_JWT_ASSERTION=tokens[who or "requester"],
            HTTP_X_FORWARDED_PROTO="https",
            HTTP_HOST="127.0.0.1",
        )
        for _ in range(3):
            response = client.get(path, secure=True)
            assert response.status_code == 200, (path, response.status_code)
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            for i, query in enumerate(VARIANTS):
                body = client.get(path + query, secure=True).content
                (args.dump / f"{number}-{i}.html").write_bytes(MASK.sub(rb"\1-", body))
        times, counts, sql_ms = [], [], []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(path, secure=True)
                times.append((time.perf_counter() - t0) * 1000)
            counts.append(len(ctx.captured_queries))
            sql_ms.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        print(
            f"{number} {label:32} median {statistics.median(times):7.1f} ms "
            f"min {min(times):7.1f} ms  SQL {statistics.median(sql_ms):6.1f} ms "
            f"queries {counts[0]}  bytes {len(response.content)}"
        )
        if args.profile == number:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.repeat):
                client.get(path, secure=True)
            profile.disable()
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
            with CaptureQueriesContext(connection) as ctx:
                client.get(path, secure=True)
            for q in ctx.captured_queries:
                print(f"{q['time']:>6}  {q['sql'][: args.sql_chars]}")
    jwks.stop()


if __name__ == "__main__":
    main()
