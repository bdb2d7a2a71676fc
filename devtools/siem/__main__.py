"""Run a SIEM stand-in in its own process (the bench, a demo):

    python -m devtools.siem http   [--port N] [--token T] [--tls CERT KEY] [--defer-checks]
    python -m devtools.siem syslog [--port N] [--tls CERT KEY] [--defer-checks]

It prints ``ready <url>`` and then answers one command per line on stdin, one JSON line
each on stdout:

* ``stats [FIRST LAST]``: runs the deferred checks, then says how many lines arrived, how
  many unique seqs, the highest, whether the first arrivals ran 1, 2, 3, ... without a
  gap, and how many of FIRST..LAST never arrived;
* ``times``: seq -> first arrival, Unix seconds (not kept with ``--defer-checks``);
* ``down``, ``up``, ``clear``, ``quit``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import ssl
import sys
import threading
import time
from typing import Any

from devtools.siem.base import Listener
from devtools.siem.http import HttpReceiver
from devtools.siem.syslog import SyslogReceiver


def _arrivals(receiver: Listener, times: dict[int, float], stop: threading.Event) -> None:
    """Note when each seq first arrived (polling the received lines, 2 ms apart)."""
    seen = 0
    while not stop.is_set():
        with receiver.lock:
            if len(receiver.received) < seen:
                seen = 0  # cleared
            fresh = receiver.received[seen:]
            seen += len(fresh)
        now = time.time()
        for line in fresh:
            # Lines start with {"seq":N, (the export's column order): cheaper than parsing.
            seq = int(line[7 : line.index(b",")]) if line.startswith(b'{"seq":') else -1
            times.setdefault(seq, now)
        time.sleep(0.002)


def stats(receiver: Listener, span: tuple[int, int] | None = None) -> dict[str, Any]:
    seqs = receiver.seqs()
    first: list[int] = []
    seen: set[int] = set()
    for seq in seqs:
        if seq not in seen:
            seen.add(seq)
            first.append(seq)
    in_order = all(b == a + 1 for a, b in itertools.pairwise(first))
    missing = len(set(range(span[0], span[1] + 1)) - seen) if span else None
    return {
        "missing": missing,
        "received": len(seqs),
        "unique": len(seen),
        "first_seq": first[0] if first else None,
        "max_seq": max(seen) if seen else None,
        "in_order": in_order,
        "errors": receiver.errors[-5:],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.siem")
    parser.add_argument("kind", choices=("http", "syslog"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="siem-test-token")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument(
        "--defer-checks", action="store_true", help="answer first, check lines on 'stats'"
    )
    args = parser.parse_args(argv)
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
    receiver: Listener = (
        HttpReceiver(token=args.token, port=args.port, tls=context, defer_checks=args.defer_checks)
        if args.kind == "http"
        else SyslogReceiver(port=args.port, tls=context, defer_checks=args.defer_checks)
    )
    receiver.start()
    times: dict[int, float] = {}
    stop = threading.Event()
    if not args.defer_checks:  # a receiver that defers its checks keeps no clock either
        threading.Thread(target=_arrivals, args=(receiver, times, stop), daemon=True).start()
    print(f"ready {receiver.url}", flush=True)  # type: ignore[attr-defined]  # noqa: T201
    for line in sys.stdin:
        command, *rest = line.split() or [""]
        answer: Any = {"ok": True}
        if command == "stats":
            time.sleep(0.01)  # let the arrival clock catch up
            span = (int(rest[0]), int(rest[1])) if len(rest) == 2 else None
            receiver.check()
            answer = stats(receiver, span)
        elif command == "times":
            time.sleep(0.01)
            answer = {str(k): v for k, v in times.items()}
        elif command == "down":
            receiver.down()
        elif command == "up":
            receiver.up()
        elif command == "clear":
            with receiver.lock:
                receiver.received.clear()
                receiver.errors.clear()
            times.clear()
        elif command == "quit":
            break
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)  # noqa: T201
    stop.set()
    receiver.stop()


if __name__ == "__main__":
    main()
