"""One person, one identity: normalised emails, look-alikes refused, roles only from settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from apps.accounts import roles
from apps.accounts.actions import AccountAction
from apps.accounts.emails import InvalidEmail, normalize_email, validate_email
from apps.accounts.models import User
from apps.audit.models import AuditAction, AuditEvent
from tests.support.jwks import SigningKey, claims_for, mint

pytestmark = pytest.mark.django_db

HEADER = "HTTP_X_POMERIUM_JWT_ASSERTION"


def visit(key: SigningKey, sub: str, email: str, path: str = "/", **kw: Any) -> Any:
    return Client().get(path, **{HEADER: mint(key, claims_for(sub, email, **kw))})


def rejections() -> list[dict[str, Any]]:
    return [
        e.details
        for e in AuditEvent.objects.filter(action=AccountAction.ASSERTION_REJECTED).order_by("seq")
    ]


# --- The one normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("AppA@Example.Test", "appa@example.test"),
        (" ADMIN@example.test ", "admin@example.test"),
        ("\uff42\uff4f\uff42@example.com", "bob@example.com"),  # full-width letters (NFKC)
        ("STRASSE@example.com", "strasse@example.com"),
        ("straße@example.com", "strasse@example.com"),  # casefold, not lower
    ],
)
def test_normalize_email(raw: str, key: str) -> None:
    assert normalize_email(raw) == key


@pytest.mark.parametrize(
    "bad",
    [
        '"quoted"@example.com',
        "a,b@example.com",
        "alice@example.com\n",
        " alice@example.com",
        "al\x7fice@example.com",  # DEL
        "al\u200bice@example.com",  # zero-width space (Cf)
        "al\x00ice@example.com",
        "alice@exa mple.com",
        "<alice@example.com>",
        "alice@",
        "@example.com",
        "alice@@example.com",
        "alice@-example.com",
        "a" * 65 + "@example.com",
        "alice@" + "a" * 250 + ".com",
        "alice@example..com",
        ".alice@example.com",
    ],
)
def test_validate_email_refuses(bad: str) -> None:
    with pytest.raises(InvalidEmail):
        validate_email(bad)


@pytest.mark.parametrize("char", [*map(chr, range(32)), " ", "\x7f"], ids=repr)
@pytest.mark.parametrize("where", ["local", "domain"])
def test_every_ascii_control_and_space_is_refused(char: str, where: str) -> None:
    # Plain ASCII addresses take a fast path; it must refuse what the category rule does.
    bad = f"al{char}ice@example.com" if where == "local" else f"alice@exa{char}mple.com"
    with pytest.raises(InvalidEmail, match="spaces, control or invisible"):
        validate_email(bad)


@pytest.mark.parametrize(
    "good",
    ["alice@example.com", "First.Last+tag@Corp.example", "o'brien@example.ie", "zoë@exämple.de"],
)
def test_validate_email_accepts_real_addresses_unchanged(good: str) -> None:
    assert validate_email(good) == good


# --- Sign-in ----------------------------------------------------------------------------


def test_a_case_variant_second_account_is_refused_at_sign_in(signing_key: SigningKey) -> None:
    assert visit(signing_key, "idp|appa", "appa@example.test").status_code == 200
    original = User.objects.get()
    response = visit(signing_key, "idp|other-sub", "AppA@Example.Test")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Another portal account already uses this email address" in page
    assert "duplicate_identity" in page
    assert list(User.objects.values_list("username", flat=True)) == ["idp|appa"]
    (details,) = rejections()
    assert details == {
        "reason": "duplicate_identity",
        "message": details["message"],
        "path": "/",
        "method": "GET",
        "sub": "idp|other-sub",
        "email": "AppA@Example.Test",
        "existing_user": original.pk,
        "existing_sub": "idp|appa",
        "existing_email": "appa@example.test",
    }


def test_changing_ones_email_to_someone_elses_is_refused(signing_key: SigningKey) -> None:
    visit(signing_key, "idp|appa", "appa@example.test")
    visit(signing_key, "idp|bob", "bob@example.test")
    response = visit(signing_key, "idp|bob", "APPA@example.test")
    assert response.status_code == 403
    assert User.objects.get(username="idp|bob").email == "bob@example.test"
    assert [d["reason"] for d in rejections()] == ["duplicate_identity"]


def test_whitespace_and_case_variants_of_the_admin_email_are_not_superusers(
    signing_key: SigningKey, settings: Any
) -> None:
    settings.PORTAL_ADMIN_EMAILS = ["admin@example.test"]
    assert visit(signing_key, "idp|admin", "admin@example.test").status_code == 200
    variants = {
        "idp|spaces": " ADMIN@example.test ",
        "idp|case": "admin@EXAMPLE.test",
        "idp|newline": "admin@example.test\n",
    }
    for sub, email in variants.items():
        assert visit(signing_key, sub, email).status_code == 403, email
    assert list(User.objects.filter(is_superuser=True).values_list("username", flat=True)) == [
        "idp|admin"
    ]
    assert User.objects.count() == 1
    assert [(d["reason"], d["sub"]) for d in rejections()] == [
        ("invalid_email", "idp|spaces"),
        ("duplicate_identity", "idp|case"),
        ("invalid_email", "idp|newline"),
    ]
    assert AuditEvent.objects.filter(action=AccountAction.USER_ADMIN_GRANTED).count() == 1


def test_the_admin_list_matches_the_normalised_email(
    signing_key: SigningKey, settings: Any
) -> None:
    settings.PORTAL_ADMIN_EMAILS = [" Admin@Example.TEST"]
    visit(signing_key, "idp|admin", "admin@example.test")
    assert User.objects.get().is_superuser


@pytest.mark.parametrize(
    "email", ['"x,y"@example.com', "eve@example.com\x7f", "eve\u202e@example.com"]
)
def test_invalid_emails_get_a_clear_403_and_an_audit_entry(
    signing_key: SigningKey, email: str
) -> None:
    response = visit(signing_key, "idp|eve", email)
    assert response.status_code == 403
    assert "invalid_email" in response.content.decode()
    assert "ask your identity provider" in response.content.decode()
    assert User.objects.count() == 0
    (details,) = rejections()
    assert details["reason"] == "invalid_email"
    assert details["email"] == repr(email)  # control characters stay visible in the trail


def test_an_admin_relinks_an_account_after_an_idp_migration(
    signing_key: SigningKey, superuser: Any, approver: Any
) -> None:
    visit(signing_key, "idp-old|appa", "appa@example.test")
    appa = User.objects.get(username="idp-old|appa")
    assert visit(signing_key, "idp-new|appa", "appa@example.test").status_code == 403
    url = f"/admin/accounts/user/{appa.pk}/relink/"
    assert approver.get(url).status_code == 403  # staff, but not an admin
    assert superuser.post(url, {"new_sub": "", "reason": "x"}).status_code == 400
    response = superuser.post(url, {"new_sub": "idp-new|appa", "reason": "moved to Okta"})
    assert response.status_code == 302
    appa.refresh_from_db()
    assert appa.username == "idp-new|appa"
    relinked = AuditEvent.objects.get(action=AccountAction.USER_RELINKED)
    assert relinked.actor_label == "root@example.com"
    assert relinked.details == {
        "old_sub": "idp-old|appa",
        "new_sub": "idp-new|appa",
        "reason": "moved to Okta",
    }
    # The new subject now signs in as the same person; the old one is a stranger.
    assert visit(signing_key, "idp-new|appa", "appa@example.test").status_code == 200
    assert User.objects.filter(email_key="appa@example.test").count() == 1
    assert visit(signing_key, "idp-old|appa", "appa@example.test").status_code == 403


# --- 2. Roles only from the settings ----------------------------------------------------------


def test_a_claim_group_named_like_a_role_group_gives_nothing(signing_key: SigningKey) -> None:
    response = visit(signing_key, "idp|eve", "eve@example.com", groups=["jitportal: auditors"])
    assert response.status_code == 200
    eve = User.objects.get()
    assert not eve.is_staff and not eve.has_perm("audit.export_auditevent")
    assert eve.group_names() == {"jitportal: auditors"}
    names = set(eve.groups.values_list("name", flat=True))
    assert names == {"idp:jitportal: auditors"}  # mirrored apart from the role group
    client = Client()
    token = mint(
        signing_key, claims_for("idp|eve", "eve@example.com", groups=["jitportal: auditors"])
    )
    for send in (client.get, client.post):
        response = send("/audit/export", {"format": "csv"}, **{HEADER: token})
        assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).exists()


def test_permissions_attached_by_hand_grant_nothing(signing_key: SigningKey) -> None:
    visit(signing_key, "idp|eve", "eve@example.com", groups=["friends"])
    eve = User.objects.get()
    export = Permission.objects.get(codename="export_auditevent")
    eve.user_permissions.add(export)
    Group.objects.get(name=roles.claim_group_name("friends")).permissions.add(export)
    eve = User.objects.get()  # fresh permission caches
    assert not eve.has_perm("audit.export_auditevent")
    response = visit(signing_key, "idp|eve", "eve@example.com", "/audit/export", groups=["friends"])
    assert response.status_code == 403


def test_roles_by_email_lists(signing_key: SigningKey, settings: Any) -> None:
    settings.PORTAL_AUDITOR_EMAILS = ["Carol@Example.com"]
    settings.PORTAL_APPROVER_EMAILS = ["bob@example.com"]
    visit(signing_key, "idp|carol", "carol@example.com")
    visit(signing_key, "idp|bob", "BOB@example.com")
    carol, bob = User.objects.get(username="idp|carol"), User.objects.get(username="idp|bob")
    assert carol.is_staff and carol.has_perm("audit.export_auditevent")
    assert bob.is_staff and bob.has_perm("access.decide_accessrequest")
    assert not bob.has_perm("audit.export_auditevent")


def test_the_admin_checks_the_role_not_only_the_staff_flag(
    signing_key: SigningKey, plain_user: Any
) -> None:
    plain_user.get("/")
    User.objects.filter(username="idp|dave").update(is_staff=True)  # set by hand, no role
    response = plain_user.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    refused = plain_user.get(response["Location"])
    assert refused.status_code == 403
    assert plain_user.get("/admin/access/accessrequest/").status_code == 302
