"""What `jit` does with the portal's answers: "can I get in now?", waiting, which grant an id
names, the approvers' list of grants, and arguments refused with what they accept.

A stand-in portal (``canned.CannedPortal``) serves the API's shapes, ``access`` included;
the same flows against the real portal are in ``test_jit_demo.py``.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.canned import (
    ALLOWED,
    access,
    as_json,
    error,
    grant,
    request,
)
from tests.cli.inprocess import run_jit

TZ = "Europe/Berlin"
OPENS_MONDAY = access("opens", "Opens Mon 09:00 CET", opens_at="2030-01-07T08:00:00Z")
WRITTEN = "The rule is written; Pomerium has not confirmed it yet."
WAITING = access("waiting", "Waiting for Pomerium", detail=WRITTEN)
SYNC_ERROR = access(
    "error", "Not enforced — sync error", detail="Pomerium does not enforce it: 403 Forbidden"
)
REVOKED = access(
    "ended", "Ended", detail="Revoked by bob@example.com at 14:02 CET: done for today."
)


def jit(tmp_path, *args: str):
    return run_jit(*args, home=tmp_path, tz=TZ)


# --- jit status: the portal's answer, word for word ------------------------------------------


def test_status_shows_the_portals_answer_for_each_grant(portal, tmp_path):
    portal.answer(
        "GET",
        "/grants",
        [
            grant(40, access=ALLOWED | {"until": "2099-01-01T16:00:00Z"}),
            grant(41, resource="prod-db", state="active", access=OPENS_MONDAY),
            grant(42, resource="billing-admin", access=WAITING),
            grant(43, resource="hr-records", access=SYNC_ERROR),
        ],
    )  # fmt: skip
    portal.answer(
        "GET",
        "/requests",
        [request(12, outcome="Approved → revoked by bob@example.com at 14:02 CET")],
    )

    result = jit(tmp_path, "status")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["GRANT", "RESOURCE", "STATE", "ACCESS", "FROM", "UNTIL", "LEFT"]
    rows = {line.split()[0]: line for line in lines[1:5]}
    assert "Allowed now, until 17:00 CET" in rows["40"] and rows["40"].endswith(" left")
    # A grant that has not started says when it opens, never how much time is "left".
    assert "Opens Mon 09:00 CET" in rows["41"] and rows["41"].endswith("—")
    assert (
        "Waiting for Pomerium (The rule is written; Pomerium has not confirmed it yet.)"
        in rows["42"]
    )
    assert "Not enforced — sync error (Pomerium does not enforce it: 403 Forbidden)" in rows["43"]
    assert lines[6].split() == ["REQUEST", "RESOURCE", "KIND", "FOR", "CREATED", "OUTCOME"]
    assert lines[7].endswith("Approved → revoked by bob@example.com at 14:02 CET")


def test_one_request_shows_its_outcome_and_its_grants_answer(portal, tmp_path):
    portal.answer("GET", "/requests/12", request(12, outcome="Auto-approved"))

    result = jit(tmp_path, "status", "12")

    assert result.stdout.splitlines() == [
        "Request 12 (new) for Grafana admin: Auto-approved",
        "Grant 40 on Grafana admin: active, Allowed now, until 17:00 CET, "
        "2030-01-07 10:00 CET → 2030-01-07 17:00 CET",
    ]


def test_a_grant_without_the_portals_answer_is_a_one_line_failure(portal, tmp_path):
    old = grant(40)
    del old["access"]
    portal.answer("GET", "/grants", [old])
    portal.answer("GET", "/requests", [])

    result = jit(tmp_path, "status")

    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (1, "", 1)
    assert "did not say whether this grant lets anyone in now" in result.stderr


# --- jit wait: 0 only when Pomerium allows now -----------------------------------------------


def waiting_for(*answers: dict[str, object]) -> list[dict[str, object]]:
    return [request(12, grant=grant(40, access=a)) for a in answers]


def test_wait_returns_0_once_the_portal_says_allowed(portal, tmp_path):
    pending = request(12, state="pending", outcome="Waiting for approval", grant=None)
    portal.answer("GET", "/requests/12", pending, *waiting_for(WAITING, ALLOWED))

    result = jit(tmp_path, "wait", "12", "--interval", "0.5s", "--timeout", "30s")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "waiting for approval (1/1)",
        "approved; Waiting for Pomerium (The rule is written; Pomerium has not confirmed it yet.)",
        "Allowed now, until 17:00 CET",
    ]
    assert result.stdout == "Request 12: Allowed now, until 17:00 CET\n"
    assert len(portal.calls("GET")) == 3


def test_wait_does_not_return_0_for_a_live_rule_outside_its_window(portal, tmp_path):
    # Gap 13: active, its rule live in Pomerium, but outside the schedule's window on a
    # Sunday: Pomerium denies, so `jit wait` keeps waiting and times out.
    sunday = access("opens", "Opens Mon 09:00 CET", opens_at="2030-01-07T08:00:00Z")
    portal.answer(
        "GET",
        "/requests/12",
        request(12, grant=grant(40, state="active", sync_status="live", access=sunday)),
    )

    result = jit(tmp_path, "wait", "12", "--timeout", "2m", "--interval", "0.5s")

    assert result.returncode == 7
    assert result.stdout == (
        "Request 12: approved; Opens Mon 09:00 CET: later than the 2m timeout\n"
    )
    assert len(portal.calls("GET")) == 1  # it does not poll for what cannot happen in time


def test_wait_keeps_waiting_for_an_opening_within_its_timeout(portal, tmp_path):
    soon = access("opens", "Opens 10:00 CET", opens_at=time_in(seconds=1))
    portal.answer("GET", "/requests/12", *waiting_for(soon, soon, ALLOWED))

    result = jit(tmp_path, "wait", "12", "--timeout", "1m", "--interval", "0.5s")

    assert result.returncode == 0, result.stderr
    assert "approved; Opens 10:00 CET" in result.stderr


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [
        (
            SYNC_ERROR,
            8,
            "Not enforced — sync error (Pomerium does not enforce it: 403 Forbidden)",
        ),
        (REVOKED, 6, "Ended (Revoked by bob@example.com at 14:02 CET: done for today.)"),
    ],
)
def test_wait_fails_clearly_when_the_grant_is_not_enforced_or_ended(
    portal, tmp_path, answer, code, said
):
    portal.answer("GET", "/requests/12", *waiting_for(answer))

    result = jit(tmp_path, "wait", "12", "--interval", "0.5s")

    assert (result.returncode, result.stdout) == (code, f"Request 12: {said}\n")


def test_wait_times_out_with_what_it_last_saw(portal, tmp_path):
    portal.answer("GET", "/requests/12", *waiting_for(WAITING))

    result = jit(tmp_path, "wait", "12", "--timeout", "1s", "--interval", "0.5s")

    assert result.returncode == 7
    assert result.stdout.startswith("Request 12: still not allowed after 1s (approved; Waiting")


def time_in(seconds: float) -> str:
    from datetime import UTC, datetime, timedelta

    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


# --- Which grant an id names ------------------------------------------------------------------


def revoke(tmp_path, ref: str):
    return jit(tmp_path, "revoke", ref, "--reason", "done")


def test_revoke_by_request_id_takes_its_grant_and_says_so(portal, tmp_path):
    portal.answer("GET", "/requests/12", request(12))
    portal.answer("POST", "/grants/40/revoke", grant(40, state="revoked", access=REVOKED))

    result = revoke(tmp_path, "12")

    assert result.returncode == 0, result.stderr
    assert result.stderr == "Request 12 → grant 40 (Grafana admin, alice@example.com).\n"
    assert result.stdout.startswith("Grant 40 on Grafana admin: revoked, Ended (Revoked by bob")
    assert portal.calls("POST") == ["/api/v1/grants/40/revoke"]
    assert json.loads(portal.seen[-1][3]) == {"reason": "done"}


def test_revoke_by_grant_id_says_whose_grant_it_is(portal, tmp_path):
    portal.answer("GET", "/grants/40", grant(40))
    portal.answer("POST", "/grants/40/revoke", grant(40, state="revoked", access=REVOKED))

    result = revoke(tmp_path, "40")

    assert result.returncode == 0, result.stderr
    assert result.stderr == "40 is grant 40 (Grafana admin, alice@example.com).\n"
    assert portal.calls("POST") == ["/api/v1/grants/40/revoke"]


def test_an_id_that_names_two_different_grants_is_refused_until_it_says_which(portal, tmp_path):
    portal.answer("GET", "/grants/12", grant(12, email="dave@example.com", resource_name="HR"))
    portal.answer("GET", "/requests/12", request(12))  # its grant is 40

    ambiguous = revoke(tmp_path, "12")
    posted_before = portal.calls("POST")
    as_grant = revoke(tmp_path, "g12")

    assert (ambiguous.returncode, ambiguous.stdout) == (2, "")
    assert ambiguous.stderr == (
        "jit: 12 names both request 12 (Grafana admin, alice@example.com) and "
        "grant 12 (HR, dave@example.com): say r12 or g12.\n"
    )
    assert posted_before == []
    assert as_grant.returncode == 4  # the stand-in has no revoke answer for grant 12
    assert portal.calls("POST") == ["/api/v1/grants/12/revoke"]
    assert "/api/v1/requests/12" not in portal.calls()[2:]  # g12 looks up no request


def test_request_and_grant_of_the_same_number_naming_one_grant_is_no_ambiguity(portal, tmp_path):
    portal.answer("GET", "/grants/12", grant(12))
    portal.answer("GET", "/requests/12", request(12, grant=grant(12)))
    portal.answer("POST", "/grants/12/end", grant(12, state="revoked", access=REVOKED))

    result = jit(tmp_path, "end", "12")

    assert result.returncode == 0, result.stderr
    assert result.stderr == "Request 12 → grant 12 (Grafana admin, alice@example.com).\n"


@pytest.mark.parametrize(
    ("ref", "code", "said"),
    [
        ("12", 4, "jit: No request or grant 12 that you may see.\n"),
        ("g12", 4, "jit: No grant 12 that you may see.\n"),
        ("r13", 5, "jit: Request 13 has no grant (it is pending).\n"),
    ],
)
def test_an_id_that_names_no_grant_says_why(portal, tmp_path, ref, code, said):
    portal.answer("GET", "/requests/13", request(13, state="pending", grant=None))

    result = revoke(tmp_path, ref)

    assert (result.returncode, result.stderr) == (code, said)
    assert portal.calls("POST") == []


def test_a_failing_portal_is_not_taken_for_a_missing_grant(portal, tmp_path):
    portal.answer("GET", "/grants/12", error(503, "Try later"))
    portal.answer("GET", "/requests/12", request(12))

    result = revoke(tmp_path, "12")

    assert (result.returncode, result.stderr) == (1, "jit: Try later\n")
    assert portal.calls("POST") == []


# --- jit grants: what approvers oversee -------------------------------------------------------


def test_grants_lists_the_open_grants_an_approver_may_see(portal, tmp_path):
    portal.answer(
        "GET",
        "/grants",
        [
            grant(40),
            grant(41, email="dave@example.com", resource="prod-db", access=OPENS_MONDAY),
        ],
    )

    listed = jit(tmp_path, "grants")
    one = jit(tmp_path, "grants", "--resource", "prod-db")
    none = jit(tmp_path, "grants", "--resource", "billing-admin")

    assert listed.returncode == 0, listed.stderr
    header, first, second = listed.stdout.splitlines()
    assert header.split() == [
        "GRANT", "REQUEST", "WHO", "RESOURCE", "LEVEL", "ACCESS", "FROM", "UNTIL",
    ]  # fmt: skip
    assert first.split()[:4] == ["40", "12", "alice@example.com", "grafana-admin"]
    assert "Allowed now, until 17:00 CET" in first
    assert "dave@example.com" in second and "Opens Mon 09:00 CET" in second
    assert [line.split()[0] for line in one.stdout.splitlines()[1:]] == ["41"]
    assert none.stdout == "No open grants on billing-admin that you may see.\n"
    assert set(portal.calls()) == {"/api/v1/grants?open=true&scope=all&limit=500"}


# --- Arguments: one reading of a duration, and refusals that name what is accepted ------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["request", "grafana-admin", "--for", "-1h", "--reason", "x"], "'-1h' is negative"),
        (["request", "grafana-admin", "--for", "90", "--reason", "x"], "like 90s, 90m or 90h"),
        (["request", "grafana-admin", "--for", "90s", "--reason", "x"], "whole minutes"),
        (["wait", "12", "--timeout", "10"], "like 10s, 10m or 10h"),
        (["wait", "12", "--interval", "0.1s"], "'0.1s' is too short: at least 0.5s"),
        (["login", "http://localhost:1", "--timeout", "-5s"], "'-5s' is negative"),
        (["status", "--limit", "0"], "'0' is not a number from 1 to 500"),
        (["status", "--limit", "-3"], "'-3' is not a number from 1 to 500"),
        (["revoke", "x12", "--reason", "r"], "like 12, g12 (a grant) or r12 (a request)"),
    ],
)
def test_bad_arguments_say_what_is_accepted(tmp_path, argv, said):
    result = run_jit(*argv, home=tmp_path)

    assert (result.returncode, result.stdout) == (2, "")
    assert said in result.stderr
    assert "expected one argument" not in result.stderr


def test_wait_takes_seconds_and_login_takes_the_same_durations(portal, tmp_path):
    portal.answer("GET", "/requests/12", *waiting_for(ALLOWED))

    waited = jit(tmp_path, "wait", "12", "--timeout", "10s")

    assert waited.returncode == 0, waited.stderr


def test_an_unknown_resource_points_at_jit_resources(portal, tmp_path):
    portal.answer("POST", "/requests", error(404, "No resource with that name."))

    result = jit(tmp_path, "request", "grafana", "--for", "1h", "--reason", "x")

    assert (result.returncode, result.stderr) == (
        4,
        "jit: No resource with that name. `jit resources` lists the ones you may request.\n",
    )


def test_a_duration_is_sent_in_minutes(portal, tmp_path):
    portal.answer("POST", "/requests", as_json(201, request(12, state="pending", grant=None)))

    result = jit(tmp_path, "request", "grafana-admin", "--for", "1.5h", "--reason", "x")

    assert result.returncode == 0, result.stderr
    assert json.loads(portal.seen[-1][3])["duration_minutes"] == 90


def test_wait_on_a_portal_without_the_access_answer_fails_at_once(portal, tmp_path):
    old = grant(40)
    del old["access"]
    portal.answer("GET", "/requests/12", request(12, grant=old))

    result = jit(tmp_path, "wait", "12", "--timeout", "1m", "--interval", "0.5s")

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.endswith("it may be older than this jit.\n")
    assert len(portal.calls()) == 1


def test_a_pending_extension_of_a_grant_that_opens_later_waits_for_its_decision(portal, tmp_path):
    pending = request(12, kind="extension", state="pending", grant=grant(40, access=OPENS_MONDAY))
    portal.answer("GET", "/requests/12", pending, pending, request(12, kind="extension"))

    result = jit(tmp_path, "wait", "12", "--timeout", "1m", "--interval", "0.5s")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == "waiting for approval (1/1)"


def test_now_outside_the_resources_window_offers_the_next_opening(portal, tmp_path):
    # The portal refuses "now" outside a recurring window and names the next opening
    # in the field start_at (a 422); jit says how to ask for it.
    portal.answer(
        "POST",
        "/requests",
        error(
            422,
            "Prod DB console is open Mon-Fri 09:00-17:00 CET; it next opens Mon 09:00 CET.",
            code="policy_violation",
            fields={"start_at": "2030-01-07T08:00:00Z"},
        ),
    )

    result = jit(tmp_path, "request", "prod-db", "--for", "1h", "--reason", "Read the slow log")

    assert (result.returncode, result.stderr) == (
        5,
        "jit: Prod DB console is open Mon-Fri 09:00-17:00 CET; it next opens Mon 09:00 CET. "
        "To start then, add --at 2030-01-07T09:00+01:00.\n",
    )
    assert len(portal.calls("POST")) == 1
