"""Mapping the assertion to a Django user: groups, admin rights, email changes, sessions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from apps.accounts.actions import AccountAction
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.support.jwks import SigningKey, claims_for, mint

pytestmark = pytest.mark.django_db

HEADER = "HTTP_X_POMERIUM_JWT_ASSERTION"


def token(
    key: SigningKey, sub: str = "idp|alice", email: str = "alice@example.com", **kw: Any
) -> str:
    return mint(key, claims_for(sub, email, **kw))


def actions(user: User | None = None) -> list[str]:
    qs = AuditEvent.objects.in_chain_order()
    if user is not None:
        qs = qs.filter(target_id=str(user.pk), target_type="accounts.user")
    return list(qs.values_list("action", flat=True))


def test_user_keyed_on_sub_email_kept_as_carried(signing_key: SigningKey) -> None:
    Client().get("/", **{HEADER: token(signing_key, email="Alice@Example.COM", name="Alice A")})
    user = User.objects.get()
    # Pomerium's rules compare the claim exactly, so the portal keeps it exactly; its own
    # comparisons use the normalised key.
    assert (user.username, user.email, user.email_key, user.display_name) == (
        "idp|alice",
        "Alice@Example.COM",
        "alice@example.com",
        "Alice A",
    )
    assert not user.has_usable_password()


def test_email_and_name_change_keep_the_same_user(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key, name="Alice")})
    client.get("/", **{HEADER: token(signing_key, email="alice.new@example.com", name="Alice N")})
    user = User.objects.get()
    assert user.email == "alice.new@example.com"
    assert user.display_name == "Alice N"
    assert actions(user) == [AccountAction.USER_CREATED, AccountAction.USER_UPDATED]
    update = AuditEvent.objects.get(action=AccountAction.USER_UPDATED)
    assert update.details["changes"]["email"] == ["alice@example.com", "alice.new@example.com"]


def test_groups_mirrored_and_changes_audited(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key, groups=["eng", "sre"])})
    user = User.objects.get()
    assert set(user.groups.values_list("name", flat=True)) == {"idp:eng", "idp:sre"}
    assert user.group_names() == {"eng", "sre"}
    client.get("/", **{HEADER: token(signing_key, groups=["eng", "dba"])})
    user.refresh_from_db()  # the names are read once per instance; this one predates the request
    assert user.group_names() == {"eng", "dba"}
    change = AuditEvent.objects.get(action=AccountAction.USER_GROUPS_CHANGED)
    assert change.details == {"added": ["dba"], "removed": ["sre"]}


def test_unchanged_assertion_writes_nothing(
    signing_key: SigningKey, django_assert_max_num_queries: Any
) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key, groups=["eng"])})
    count = AuditEvent.objects.count()
    # Steady state: session + user lookups, no writes for identity.
    with django_assert_max_num_queries(4):
        client.get("/signout-probe-404", **{HEADER: token(signing_key, groups=["eng"])})
    assert AuditEvent.objects.count() == count


def test_admin_group_grants_and_losing_it_removes_superuser(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key, groups=["portal-admins"])})
    user = User.objects.get()
    assert user.is_staff and user.is_superuser
    client.get("/", **{HEADER: token(signing_key, groups=["eng"])})
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
    assert actions(user) == [
        AccountAction.USER_CREATED,
        AccountAction.USER_ADMIN_GRANTED,
        AccountAction.USER_GROUPS_CHANGED,
        AccountAction.USER_ADMIN_REVOKED,
    ]


def test_admin_by_email(signing_key: SigningKey, settings: Any) -> None:
    settings.PORTAL_ADMIN_EMAILS = ["boss@example.com"]
    Client().get("/", **{HEADER: token(signing_key, sub="idp|boss", email="Boss@Example.com")})
    assert User.objects.get(username="idp|boss").is_superuser


def test_approver_role_is_staff_with_decide_permission(signing_key: SigningKey) -> None:
    Client().get("/", **{HEADER: token(signing_key, groups=["approvers"])})
    user = User.objects.get()
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("access.decide_accessrequest")
    assert not user.has_perm("audit.export_auditevent")


def test_auditor_role_sees_but_cannot_decide(signing_key: SigningKey) -> None:
    Client().get("/", **{HEADER: token(signing_key, groups=["compliance"])})
    user = User.objects.get()
    assert user.is_staff
    assert user.has_perm("audit.export_auditevent")
    assert not user.has_perm("access.decide_accessrequest")


def session_user_id(client: Client) -> str | None:
    """Whom the client's session cookie names (sessions are signed cookies: no rows)."""
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is None or not cookie.value:
        return None
    return SessionStore(session_key=cookie.value).get("_auth_user_id")


def test_missing_header_logs_the_session_out(signing_key: SigningKey) -> None:
    client = Client()
    assert client.get("/", **{HEADER: token(signing_key)}).status_code == 200
    user = User.objects.get()
    assert session_user_id(client) == str(user.pk)
    response = client.get("/")
    assert response.status_code == 403
    assert response.cookies[settings.SESSION_COOKIE_NAME].value == ""  # the cookie is deleted
    assert session_user_id(client) is None
    rejected = AuditEvent.objects.get(action=AccountAction.ASSERTION_REJECTED)
    assert rejected.actor == user  # the session's user is named


def test_invalid_token_logs_the_session_out(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key)})
    assert session_user_id(client) is not None
    response = client.get("/", **{HEADER: "garbage"})
    assert response.status_code == 403
    assert session_user_id(client) is None


def test_token_for_another_user_replaces_the_session(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key)})
    alice = User.objects.get(username="idp|alice")
    assert session_user_id(client) == str(alice.pk)
    response = client.get(
        "/", **{HEADER: token(signing_key, sub="idp|bob", email="bob@example.com")}
    )
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "idp|bob"
    assert session_user_id(client) == str(User.objects.get(username="idp|bob").pk)


def test_cookieless_requests_leave_no_session_rows(signing_key: SigningKey) -> None:
    # Probes and API clients behind Pomerium send no cookie; each used to leave a row.
    for _ in range(5):
        assert Client().get("/", **{HEADER: token(signing_key)}).status_code == 200
    assert Session.objects.count() == 0


def test_inactive_user_is_refused(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key)})
    User.objects.filter(username="idp|alice").update(is_active=False)
    response = Client().get("/", **{HEADER: token(signing_key)})
    assert response.status_code == 403
    assert b"disabled" in response.content


def test_healthz_needs_no_assertion_and_reveals_nothing() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert not AuditEvent.objects.exists()


def test_sign_out_goes_to_pomerium(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key)})
    response = client.post("/signout", **{HEADER: token(signing_key)})
    assert response.status_code == 302
    assert response["Location"] == "/.pomerium/sign_out"
    assert session_user_id(client) is None


def test_sign_out_by_get_only_shows_the_button(signing_key: SigningKey) -> None:
    client = Client()
    client.get("/", **{HEADER: token(signing_key)})
    response = client.get("/signout", **{HEADER: token(signing_key)})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<form method="post" action="/signout">' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert session_user_id(client) == str(User.objects.get().pk)  # still signed in


def test_sign_out_post_needs_the_csrf_token(signing_key: SigningKey) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/", **{HEADER: token(signing_key)})
    response = client.post("/signout", **{HEADER: token(signing_key)})
    assert response.status_code == 403
    assert session_user_id(client) == str(User.objects.get().pk)


def test_admin_password_login_does_not_exist(signing_key: SigningKey) -> None:
    response = Client().post(
        "/admin/login/", {"username": "x", "password": "y"}, **{HEADER: token(signing_key)}
    )
    assert response.status_code == 403
    assert b"password" not in response.content.lower()


def test_staff_reaches_admin(signing_key: SigningKey) -> None:
    response = Client().get("/admin/", **{HEADER: token(signing_key, groups=["portal-admins"])})
    assert response.status_code == 200


def test_request_id_and_assertion_ids_reach_the_audit(signing_key: SigningKey) -> None:
    claims = claims_for("idp|alice", "alice@example.com")
    Client().get(
        "/",
        HTTP_X_REQUEST_ID="req-12345678",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_USER_AGENT="pytest-browser",
        **{HEADER: mint(signing_key, claims)},
    )
    event = AuditEvent.objects.get(action=AccountAction.USER_CREATED)
    # The request id is the portal's own; Pomerium's id is kept apart.
    assert re.fullmatch(r"[0-9a-f]{32}", event.request_id)
    assert event.upstream_request_id == "req-12345678"
    assert event.assertion_jti == claims["jti"]
    assert event.assertion_sid == claims["sid"]
    assert event.ip == "203.0.113.9"
    assert event.user_agent == "pytest-browser"
