"""``manage.py run_demo``: the whole product on this machine, Ctrl-C stops it all.

Runs migrate and seed_demo, then the Zero and Pomerium Core stand-ins, the portal, a
Celery worker with embedded beat and the dev sign-in proxy, each in its own process group
with its output prefixed by its name. Exits 0 when stopped by Ctrl-C/SIGTERM, non-zero
with one readable line when a part fails.
"""

from __future__ import annotations

import signal
import sys
from argparse import ArgumentParser
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from devtools.demo.identities import DEMO_IDENTITIES
from devtools.demo.supervisor import (
    BASE_DIR,
    CORE_ROUTE,
    CORE_TARGET,
    PAGERDUTY_SCHEDULE,
    ROUTE_HOST,
    ChildFailed,
    DemoPorts,
    Supervisor,
    demo_children,
    demo_environment,
    port_is_free,
    prepare_data_dir,
)


class Command(BaseCommand):
    help = (
        "Run the demo: Zero and Core stand-ins, portal (SQLite), Celery worker+beat and the dev "
        "sign-in proxy. Ctrl-C stops everything."
    )
    # The children run the checks against their own (demo) environment.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="dev sign-in proxy (open this)")
        parser.add_argument("--portal-port", type=int, default=8001, help="the portal itself")
        parser.add_argument("--zero-port", type=int, default=8790, help="the Zero simulator")
        parser.add_argument("--slack-port", type=int, default=8791, help="the Slack stand-in")
        parser.add_argument(
            "--oncall-port", type=int, default=8792, help="the PagerDuty/Opsgenie stand-in"
        )
        parser.add_argument(
            "--core-port", type=int, default=8793, help="the Pomerium Core stand-in"
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=BASE_DIR / "demo-data",
            help="SQLite database, broker folders, secret key (default: demo-data/)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ports = DemoPorts(
            proxy=options["port"],
            portal=options["portal_port"],
            zero=options["zero_port"],
            slack=options["slack_port"],
            oncall=options["oncall_port"],
            core=options["core_port"],
        )
        self._check_ports(ports)
        data_dir: Path = options["data_dir"].resolve()
        prepare_data_dir(data_dir)
        supervisor = Supervisor(demo_environment(ports, data_dir), out=self.stdout)
        self._install_signal_handlers(supervisor)
        try:
            self._prepare_database(supervisor)
            if supervisor.stop_requested.is_set():
                return
            for child in demo_children(ports):
                supervisor.add(child)
            supervisor.start()
            supervisor.wait_ready()
            if supervisor.stop_requested.is_set():
                return
            self.stdout.write(self._banner(ports, data_dir))
            supervisor.watch()
            self.stdout.write("Stopping the demo…")
        except ChildFailed as exc:
            raise CommandError(str(exc)) from None
        finally:
            supervisor.stop()

    def _check_ports(self, ports: DemoPorts) -> None:
        numbers = list(ports.all().values())
        if len(set(numbers)) != len(numbers):
            raise CommandError(f"the demo needs {len(numbers)} different ports, got {ports.all()}")
        for name, port in ports.all().items():
            if not port_is_free(port):
                raise CommandError(
                    f"port {port} ({name}) is already in use; is another demo running? "
                    "Pick others with --port/--portal-port/--zero-port/--slack-port/"
                    "--oncall-port/--core-port"
                )

    def _install_signal_handlers(self, supervisor: Supervisor) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            supervisor.request_stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def _prepare_database(self, supervisor: Supervisor) -> None:
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        code = supervisor.run_once("migrate", [*manage, "migrate", "--noinput"])
        if code != 0 and not supervisor.stop_requested.is_set():
            raise CommandError(f"migrate failed with code {code} (its output is above)")
        if supervisor.stop_requested.is_set():
            return
        code = supervisor.run_once("seed", [*manage, "seed_demo"])
        if code != 0 and not supervisor.stop_requested.is_set():
            raise CommandError(f"seed_demo failed with code {code} (its output is above)")

    def _banner(self, ports: DemoPorts, data_dir: Path) -> str:
        url = f"http://{ROUTE_HOST}:{ports.proxy}"
        evaluator = f"http://127.0.0.1:{ports.zero}/_sim/evaluate"
        core = f"http://127.0.0.1:{ports.core}"
        slack = f"http://127.0.0.1:{ports.slack}"
        schedule = PAGERDUTY_SCHEDULE
        rule = "=" * 78
        people = "\n".join(
            f"    {i.key:<6} {i.name:<16} {i.email:<20} {', '.join(i.groups):<20} {i.role_blurb}"
            for i in DEMO_IDENTITIES
        )
        return f"""
{rule}
  jitportal demo is up:  {url}
{rule}
  Sign in as (the sign-in page at {url}/.pomerium/sign_in offers each of these):
{people}

  What to try:
    1. Open {url}, sign in as Alice and request "Grafana admin" for an hour.
    2. Switch user ({url}/.pomerium/sign_out) to Bob and approve it in {url}/admin/
    3. Watch the grant go live in the Zero simulator's evaluator:
         {evaluator}?policy=jit-grafana-admin&email=alice@example.com
    4. Revoke the grant as Bob (Admin > Grants); the evaluator denies Alice again.
    5. Sign in as Dave (on call) and use break-glass on "Billing admin". It lives in
       the production cluster (Grafana in staging); its rule is in production only:
         {evaluator}?cluster=demo-production&policy=jit-billing-admin&email=dave@example.com
    6. Sign in as Carol and export the audit log: {url}/audit/export
    7. Slack: every request is posted to #access-approvals in the Slack stand-in. As Alice,
       request "Grafana admin"; then open the "Slack" page as Bob and click Approve:
         {slack}/?as=U0BOB
       The click is signed and sent to the portal exactly as Slack sends it; the message
       updates. Dave is on call in PagerDuty ({schedule}): his "Incident console" request
       is approved at once.
    8. Pomerium Core: "Edge router console" lives on the target {CORE_TARGET}, a Core
       (stand-in) beside the two Zero clusters. Request it as Alice, approve it as Bob:
       its page says "Closed by jitportal at …" (Core cannot close a rule by itself; the
       worker removes it), where Zero resources say "Closes by itself in Pomerium at …".
       Ask Core's evaluator whether Alice gets through the route:
         curl -d '{{"target":"{CORE_ROUTE}","email":"alice@example.com"}}' {core}/_sim/evaluate

  Parts: portal http://127.0.0.1:{ports.portal} (reach it through the proxy only),
         Zero simulator http://127.0.0.1:{ports.zero}/api/v0 (clusters staging and
         production, one namespace each), Core stand-in {core} (target
         {CORE_TARGET}, route {CORE_ROUTE}), Slack stand-in {slack}, PagerDuty stand-in
         http://127.0.0.1:{ports.oncall}, Celery worker with beat,
         data in {data_dir}
  Ctrl-C stops everything.
{rule}
"""
