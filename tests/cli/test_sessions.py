"""Gap 9: a session token goes only to the portal it came from, and never over plain http.

Two stand-in portals on this machine, each with its own session: what each one receives
is what the person's token could be replayed from.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator

import pytest

from jitcli.sessions import Session, origin, save_session
from tests.cli.canned import CannedPortal, fake_token, grant
from tests.cli.inprocess import person_environment, run_jit

FAR_OFF = 4102444800  # 2100-01-01: a fixed expiry, so one person's token is one string


def token(email: str) -> str:
    return fake_token(email=email, exp=FAR_OFF)


@pytest.fixture
def portals() -> Iterator[tuple[CannedPortal, CannedPortal]]:
    first, second = CannedPortal(), CannedPortal()
    for portal in (first, second):
        portal.answer("GET", "/grants", [grant()])
        portal.answer("GET", "/requests", [])
    yield first, second
    first.close()
    second.close()


def tokens_seen(portal: CannedPortal) -> set[str]:
    return {headers.get("Authorization", "") for _, _, headers, _ in portal.seen}


def session_file(home) -> dict:
    return json.loads((home / "jit" / "session.json").read_text())


def test_each_portal_gets_its_own_token_and_no_other(portals, tmp_path):
    first, second = portals
    with person_environment(tmp_path):
        save_session(Session(first.url, token("alice@first")))
        save_session(Session(second.url, token("alice@second")))  # the last login: current

    by_default = run_jit("status", home=tmp_path)
    by_url = run_jit("status", "--url", first.url, home=tmp_path)

    assert (by_default.returncode, by_url.returncode) == (0, 0)
    assert tokens_seen(second) == {f"Pomerium {token('alice@second')}"}
    assert tokens_seen(first) == {f"Pomerium {token('alice@first')}"}
    stored = session_file(tmp_path)
    assert stored["version"] == 2 and stored["current"] == origin(second.url)
    assert set(stored["sessions"]) == {origin(first.url), origin(second.url)}


@pytest.mark.parametrize("how", ["--url", "JIT_URL"])
def test_another_portal_without_a_session_of_its_own_gets_no_token(portals, tmp_path, how):
    first, second = portals
    with person_environment(tmp_path):
        save_session(Session(first.url, token("alice@first")))
    if how == "JIT_URL":
        result = run_jit("status", home=tmp_path, jit_url=second.url)
    else:
        result = run_jit("status", "--url", second.url, home=tmp_path)

    assert result.returncode == 3
    assert result.stderr == (
        f"jit: Not signed in to {origin(second.url)}: run `jit login {second.url}`.\n"
    )
    assert second.seen == [] and first.seen == []


def test_the_same_origin_under_another_path_or_spelling_is_the_same_portal(portals, tmp_path):
    first, _ = portals
    port = first.url.rsplit(":", 1)[1]
    with person_environment(tmp_path):
        save_session(Session(first.url, token("alice@first")))

    result = run_jit("status", "--url", f"HTTP://127.0.0.1:{port}/", home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert tokens_seen(first) == {f"Pomerium {token('alice@first')}"}


@pytest.mark.parametrize(
    "url",
    ["http://jit.example.com", "http://10.0.0.5:8000", "http://127.0.0.1.example.com"],
)
def test_plain_http_to_another_machine_is_refused_before_anything_is_sent(tmp_path, url):
    login = run_jit("login", url, "--no-browser", home=tmp_path)
    status = run_jit("status", "--url", url, home=tmp_path)

    for result in (login, status):
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            f"jit: {url} is plain http: jit sends your session only over https "
            "(http:// only to this machine: localhost, 127.0.0.1, ::1).\n"
        )
    assert not (tmp_path / "jit").exists()


@pytest.mark.parametrize(
    "url", ["https://alice:pw@jit.example.com", "https://jit.example.com:99999", "jit.example.com"]
)
def test_what_is_not_a_portal_url_is_refused(tmp_path, url):
    result = run_jit("status", "--url", url, home=tmp_path)

    assert result.returncode == 2
    assert "portal URL like https://jit.example.com" in result.stderr


def test_a_single_session_file_of_jit_0_1_is_read_and_rewritten_on_the_next_login(
    portals, tmp_path
):
    first, second = portals
    folder = tmp_path / "jit"
    folder.mkdir(mode=0o700)
    old = folder / "session.json"
    old.write_text(json.dumps({"url": first.url, "token": token("alice@first")}))
    old.chmod(0o600)

    status = run_jit("status", home=tmp_path)
    elsewhere = run_jit("status", "--url", second.url, home=tmp_path)
    untouched = json.loads(old.read_text())
    with person_environment(tmp_path):
        save_session(Session(second.url, token("alice@second")))

    assert status.returncode == 0, status.stderr
    assert tokens_seen(first) == {f"Pomerium {token('alice@first')}"}
    assert elsewhere.returncode == 3 and second.seen == []
    assert untouched == {"url": first.url, "token": token("alice@first")}  # reading writes nothing
    assert session_file(tmp_path) == {
        "version": 2,
        "current": origin(second.url),
        "sessions": {
            origin(first.url): {"url": first.url, "token": token("alice@first")},
            origin(second.url): {"url": second.url, "token": token("alice@second")},
        },
    }
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_an_old_session_for_plain_http_elsewhere_is_never_sent(tmp_path):
    folder = tmp_path / "jit"
    folder.mkdir(mode=0o700)
    (folder / "session.json").write_text(
        json.dumps({"url": "http://jit.example.com", "token": token("alice@old")})
    )

    result = run_jit("status", home=tmp_path)

    assert result.returncode == 2
    assert "is plain http: jit sends your session only over https" in result.stderr


def test_an_entry_filed_under_another_origin_is_ignored(portals, tmp_path):
    # A hand-edited (or planted) file: the first portal's token listed under the second's
    # origin must not be sent to the second.
    first, second = portals
    folder = tmp_path / "jit"
    folder.mkdir(mode=0o700)
    (folder / "session.json").write_text(
        json.dumps(
            {
                "version": 2,
                "current": origin(second.url),
                "sessions": {origin(second.url): {"url": first.url, "token": token("a@first")}},
            }
        )
    )

    result = run_jit("status", "--url", second.url, home=tmp_path)

    assert result.returncode == 3
    assert second.seen == [] and first.seen == []


def test_logout_forgets_one_portal_or_all(portals, tmp_path):
    first, second = portals
    with person_environment(tmp_path):
        save_session(Session(first.url, token("alice@first")))
        save_session(Session(second.url, token("alice@second")))

    one = run_jit("logout", "--url", first.url, home=tmp_path)
    left = session_file(tmp_path)
    every = run_jit("logout", "--all", home=tmp_path)

    assert one.stdout == f"Signed out of {first.url}.\n"
    assert set(left["sessions"]) == {origin(second.url)} and left["current"] == origin(second.url)
    assert every.stdout == f"Signed out of {second.url}.\n"
    assert not (tmp_path / "jit" / "session.json").exists()
