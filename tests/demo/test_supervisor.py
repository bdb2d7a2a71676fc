"""The demo supervisor with small real child processes, and the demo stack's wiring.

Children are tiny Python programs, so these tests exercise real process groups, signals
and pipes without needing the rest of the demo. No Django database is involved.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from devtools.coresim.simulator import DEV_SHARED_SECRET
from devtools.demo.supervisor import (
    Child,
    ChildFailed,
    DemoPorts,
    Supervisor,
    demo_children,
    demo_environment,
    port_is_free,
    prepare_data_dir,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_child(name: str, code: str, **ready: object) -> Child:
    return Child(name=name, argv=[sys.executable, "-c", textwrap.dedent(code)], **ready)  # type: ignore[arg-type]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


SERVE = """
import socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else {port}))
sock.listen()
print("listening", flush=True)
time.sleep(60)
"""


def test_children_become_ready_and_their_output_is_prefixed():
    out = io.StringIO()
    port = free_port()
    supervisor = Supervisor(os.environ, out=out)
    supervisor.add(python_child("web", SERVE.format(port=port), ready_port=port))
    supervisor.add(
        python_child(
            "worker",
            "import time; print('celery@x ready.', flush=True); time.sleep(60)",
            ready_line=" ready.",
        )
    )
    with supervisor:
        supervisor.start()
        supervisor.wait_ready(timeout=20)
        assert not port_is_free(port)

    lines = out.getvalue().splitlines()
    assert "   web | listening" in lines
    assert "worker | celery@x ready." in lines
    assert all(
        c.process is not None and c.process.returncode is not None for c in supervisor.children
    )


def test_stop_terminates_the_whole_process_group(tmp_path: Path):
    pid_file = tmp_path / "grandchild.pid"
    code = f"""
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open({str(pid_file)!r}, "w").write(str(grandchild.pid))
    print("ready.", flush=True)
    time.sleep(60)
    """
    supervisor = Supervisor(os.environ, out=io.StringIO())
    supervisor.add(python_child("parent", code, ready_line="ready."))
    supervisor.start()
    supervisor.wait_ready(timeout=20)
    grandchild = int(pid_file.read_text())

    supervisor.stop()

    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grandchild)
    assert supervisor.children[0].process.returncode == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    code = """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready.", flush=True)
    time.sleep(60)
    """
    supervisor = Supervisor(os.environ, out=io.StringIO(), stop_grace=0.5)
    supervisor.add(python_child("stubborn", code, ready_line="ready."))
    supervisor.start()
    supervisor.wait_ready(timeout=20)

    started = time.monotonic()
    supervisor.stop()

    assert supervisor.children[0].process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_a_dying_child_stops_the_watch_with_one_readable_line():
    supervisor = Supervisor(os.environ, out=io.StringIO())
    supervisor.add(python_child("sleeper", "import time; time.sleep(60)"))
    supervisor.add(python_child("crasher", "import time; time.sleep(0.3); raise SystemExit(3)"))
    with supervisor:
        supervisor.start()
        with pytest.raises(ChildFailed) as failure:
            supervisor.watch()

    assert str(failure.value).startswith("crasher exited with code 3;")
    assert "\n" not in str(failure.value)
    assert supervisor.children[0].process.returncode is not None  # the sleeper was stopped too


def test_a_child_killed_by_a_signal_is_reported_by_signal_name():
    supervisor = Supervisor(os.environ, out=io.StringIO())
    supervisor.add(
        python_child("portal", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    )
    with supervisor:
        supervisor.start()
        with pytest.raises(ChildFailed, match=r"^portal was killed by SIGKILL; stopped the demo"):
            supervisor.watch()


def test_a_child_dying_before_it_is_ready_fails_wait_ready():
    port = free_port()
    supervisor = Supervisor(os.environ, out=io.StringIO())
    supervisor.add(python_child("portal", "raise SystemExit(2)", ready_port=port))
    with supervisor:
        supervisor.start()
        with pytest.raises(ChildFailed, match="portal exited with code 2"):
            supervisor.wait_ready(timeout=20)


def test_a_child_that_never_gets_ready_times_out():
    port = free_port()
    supervisor = Supervisor(os.environ, out=io.StringIO())
    supervisor.add(python_child("portal", "import time; time.sleep(60)", ready_port=port))
    with supervisor:
        supervisor.start()
        with pytest.raises(ChildFailed, match=f"portal was not ready.*127.0.0.1:{port}"):
            supervisor.wait_ready(timeout=1)


def test_request_stop_ends_the_watch_cleanly():
    supervisor = Supervisor(os.environ, out=io.StringIO())
    supervisor.add(python_child("sleeper", "import time; time.sleep(60)"))
    supervisor.start()
    supervisor.request_stop()

    supervisor.watch()  # returns instead of raising
    supervisor.stop()

    assert supervisor.children[0].process.returncode == -signal.SIGTERM


def test_run_once_returns_the_exit_code_with_prefixed_output():
    out = io.StringIO()
    supervisor = Supervisor(os.environ, out=out)

    code = supervisor.run_once("migrate", [sys.executable, "-c", "print('applied'); exit(4)"])

    assert code == 4
    assert "migrate | applied" in out.getvalue()


# --- the demo stack ------------------------------------------------------------------------


def test_demo_environment_wires_the_parts_to_the_chosen_ports(tmp_path: Path):
    ports = DemoPorts(proxy=9100, portal=9101, zero=9102)
    base = {"API_USER_TOKEN_FILE": "/run/secrets/real", "POMERIUM_JWT_ISSUER": "x", "PATH": "/bin"}

    env = demo_environment(ports, tmp_path, base)

    assert env["DEBUG"] == "true"
    assert env["JWKS_ENDPOINT"] == "http://127.0.0.1:9100/.well-known/pomerium/jwks.json"
    assert env["POMERIUM_JWT_AUDIENCE"] == "localhost"
    assert env["PORTAL_URL"] == "http://localhost:9100"
    assert env["ZERO_API_URL"] == "http://127.0.0.1:9102/api/v0"
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    assert env["CELERY_BROKER_URL"] == "filesystem://"
    assert env["BROKER_DATA_DIR"] == str(tmp_path / "broker")
    assert env["PORTAL_ADMIN_GROUPS"] == "portal-admins"
    assert env["PORTAL_AUDITOR_GROUPS"] == "compliance"
    assert env["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert (env["API_USER_TOKEN"], env["ORGANIZATION_ID"], env["CLUSTER_ID"]) == (
        "demo-api-token",
        "demo-org",
        "",
    )
    assert env["ZERO_CLUSTERS"] == "staging=demo-staging,production=demo-production"
    assert env["ZERO_DEFAULT_CLUSTER"] == "staging"
    assert env["SLACK_API_URL"] == "http://127.0.0.1:8791/api"
    assert env["PAGERDUTY_API_URL"] == "http://127.0.0.1:8792"
    assert env["POMERIUM_TARGETS"] == "edge=core:http://127.0.0.1:8793"
    assert env["POMERIUM_SHARED_SECRET"] == DEV_SHARED_SECRET
    # A *_FILE variant would win over the simulator's token in settings.
    assert "API_USER_TOKEN_FILE" not in env
    assert "POMERIUM_JWT_ISSUER" not in env
    assert env["PATH"] == "/bin"


def test_demo_environment_keeps_the_callers_storage(tmp_path: Path):
    base = {
        "DATABASE_URL": "postgres://db/demo",
        "REDIS_URL": "redis://r:6379/0",
        "SECRET_KEY": "s",
    }

    env = demo_environment(DemoPorts(), tmp_path, base)

    assert env["DATABASE_URL"] == "postgres://db/demo"
    assert "CELERY_BROKER_URL" not in env  # settings fall back to REDIS_URL
    assert env["SECRET_KEY"] == "s"
    assert "SECRET_KEY_FILE" not in env


def test_prepare_data_dir_creates_broker_folders_and_a_private_stable_key(tmp_path: Path):
    prepare_data_dir(tmp_path / "d")
    key = (tmp_path / "d" / "secret-key").read_text()
    prepare_data_dir(tmp_path / "d")

    assert (tmp_path / "d" / "broker" / "queue").is_dir()
    assert (tmp_path / "d" / "broker" / "processed").is_dir()
    assert (tmp_path / "d" / "secret-key").read_text() == key
    assert (tmp_path / "d" / "secret-key").stat().st_mode & 0o077 == 0


def test_demo_children_use_the_chosen_ports():
    children = {c.name: c for c in demo_children(DemoPorts(proxy=9100, portal=9101, zero=9102))}

    assert list(children) == ["zero", "core", "slack", "oncall", "portal", "worker", "proxy"]
    assert children["slack"].ready_port == 8791 and children["oncall"].ready_port == 8792
    slack = children["slack"].argv
    assert slack[slack.index("--interactivity-url") + 1] == (
        "http://127.0.0.1:9101/slack/interactions"
    )
    assert "U0BOB:bob:bob@example.com" in slack
    assert children["zero"].argv[1:5] == ["-m", "devtools.zerosim.simulator", "--port", "9102"]
    assert "127.0.0.1:9101" in children["portal"].argv
    assert children["portal"].ready_url == "http://127.0.0.1:9101/healthz"
    worker = ["-A", "jitportal", "worker", "-B", "--loglevel", "INFO", "--concurrency", "2"]
    assert children["worker"].argv[-len(worker) :] == worker
    assert "--upstream" in children["proxy"].argv
    assert children["proxy"].argv[children["proxy"].argv.index("--upstream") + 1] == (
        "http://127.0.0.1:9101"
    )
    assert children["proxy"].ready_port == 9100
    core = children["core"].argv
    assert core[1:5] == ["-m", "devtools.coresim", "--port", "8793"]
    assert core[core.index("--route") + 1] == "edge-console=https://edge.localhost"
    assert children["core"].ready_port == 8793


def test_run_demo_refuses_a_port_that_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"port {port} \\(proxy\\) is already in use"):
            call_command("run_demo", "--port", str(port), "--portal-port", "1", "--zero-port", "2")


def test_run_demo_refuses_duplicate_ports():
    with pytest.raises(CommandError, match="6 different ports"):
        call_command("run_demo", "--port", "9200", "--portal-port", "9200", "--zero-port", "9201")
