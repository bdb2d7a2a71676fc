"""POMERIUM_CORE_URL, POMERIUM_SHARED_SECRET(_FILE), POMERIUM_TARGETS, POMERIUM_API_TOKEN:
parsed and checked at start-up, one readable line per refusal; targets' capabilities."""

from __future__ import annotations

import base64

import pytest

from apps.access import clusters, targets
from apps.access.pomerium_targets import Target, TargetConfigError, decode_secret, parse, target_set
from tests.test_settings import PRODUCTION, manage

SECRET = base64.b64encode(b"k" * 32).decode()
ZERO_ONLY = ("API_USER_TOKEN", "ORGANIZATION_ID", "CLUSTER_ID")
CORE_ONLY = {
    **{k: v for k, v in PRODUCTION.items() if k not in ZERO_ONLY},
    "POMERIUM_CORE_URL": "http://pomerium:5443",
    "POMERIUM_SHARED_SECRET": SECRET,
}


def test_entries_are_parsed_in_order() -> None:
    found = parse("edge=core:http://pomerium:5443/, prod=zero:c-1,corp=api:https://c.example.com")

    assert found == {
        "edge": Target("edge", "core", "http://pomerium:5443"),
        "prod": Target("prod", "zero", "c-1"),
        "corp": Target("corp", "api", "https://c.example.com"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("edge=gateway:http://p:5443", "has flavour 'gateway'; use one of zero, core, api"),
        ("edge=core:http://a,edge=core:http://b", "names target 'edge' twice"),
        ("edge", "is not name=flavour:address"),
        ("edge=core:pomerium:5443", "needs an http:// or https:// address"),
        ("Edge=core:http://p", "name 'Edge' is not valid"),
    ],
)
def test_bad_entries_are_refused_readably(text: str, message: str) -> None:
    with pytest.raises(TargetConfigError, match=message):
        parse(text)


def test_the_shared_secret_is_base64_and_never_echoed() -> None:
    assert decode_secret(SECRET) == b"k" * 32
    assert decode_secret(base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()) == b"\xfb\xff" * 16
    with pytest.raises(TargetConfigError) as caught:
        decode_secret("not base64 !!")
    assert "not valid base64" in str(caught.value) and "!!" not in str(caught.value)


def test_core_url_alone_makes_the_default_target_a_core() -> None:
    found = target_set(
        cluster_id="",
        zero={},
        default_name="default",
        core_url="http://p:5443",
        shared_secret=SECRET,
    )
    assert found == {"default": Target("default", "core", "http://p:5443")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"core_url": "http://p:5443"}, "need POMERIUM_SHARED_SECRET"),
        ({"core_url": "http://p:5443", "shared_secret": "%%%"}, "not valid base64"),
        ({"cluster_id": "c-0", "core_url": "http://p", "shared_secret": SECRET}, "both name"),
        (
            {"targets": {"corp": Target("corp", "api", "https://c")}, "default_name": "corp"},
            "need POMERIUM_API_TOKEN",
        ),
        (
            {
                "cluster_id": "c-0",
                "zero": {"edge": "c-1"},
                "targets": {"edge": Target("edge", "zero", "c-2")},
            },
            "'edge', which is already",
        ),
    ],
)
def test_conflicts_are_refused(kwargs: dict, message: str) -> None:
    arguments = {"cluster_id": "", "zero": {}, "default_name": "default", **kwargs}
    with pytest.raises(TargetConfigError, match=message):
        target_set(**arguments)


def test_capabilities_follow_the_flavour(settings) -> None:
    settings.CLUSTER_ID = "c-0"
    settings.POMERIUM_SHARED_SECRET = SECRET
    settings.POMERIUM_API_TOKEN = "tok"
    settings.POMERIUM_TARGETS = parse("edge=core:http://p:5443,corp=api:https://c.example.com")

    assert targets.capabilities("default") == {
        targets.DATE,
        targets.RECURRING,
        targets.CHANGESETS,
        targets.ACTIVITY_LOG,
    }
    assert targets.capabilities("corp") == {targets.DATE, targets.RECURRING, targets.ROUTES}
    assert targets.capabilities("edge") == {targets.ROUTES}
    assert [targets.flavour(n) for n in ("default", "edge", "corp")] == ["zero", "core", "api"]
    assert not targets.closes_by_itself("edge") and targets.closes_by_itself("corp")
    assert clusters.names() == ["default", "edge", "corp"]
    assert clusters.zero_clusters() == {"default": "c-0"}


def test_the_portal_starts_with_only_core_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "ERROR", env=CORE_ONLY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_secret_may_come_from_a_file(tmp_path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    env = {k: v for k, v in CORE_ONLY.items() if k != "POMERIUM_SHARED_SECRET"}
    result = manage("check", env={**env, "POMERIUM_SHARED_SECRET_FILE": str(secret_file)})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"POMERIUM_TARGETS": "edge=gateway:http://p"}, "has flavour 'gateway'"),
        ({"POMERIUM_SHARED_SECRET": "not*base64"}, "POMERIUM_SHARED_SECRET is not valid base64"),
        ({"POMERIUM_SHARED_SECRET": ""}, "need POMERIUM_SHARED_SECRET"),
        (
            {"POMERIUM_TARGETS": "edge=core:http://a,edge=core:http://b"},
            "names target 'edge' twice",
        ),
    ],
)
def test_bad_target_settings_refuse_to_start_in_one_line(env: dict[str, str], shown: str):
    result = manage("check", env={**CORE_ONLY, **env})
    assert result.returncode != 0
    assert result.stderr.startswith("jitportal refuses to start: ")
    assert shown in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not*base64" not in result.stderr


def test_each_target_is_named_by_what_it_is(settings) -> None:
    """The words people read (``targets.describe`` and friends): Zero's v0 API keeps its
    own, a Core says Core, a ConfigService target of unknown product says Pomerium."""
    settings.CLUSTER_ID = "c-0"
    settings.POMERIUM_SHARED_SECRET = SECRET
    settings.POMERIUM_API_TOKEN = "tok"
    settings.POMERIUM_TARGETS = parse("edge=core:http://p:5443,corp=api:https://c.example.com")

    assert [targets.describe(n) for n in ("default", "edge", "corp")] == [
        "Zero cluster default",
        "Pomerium Core edge",
        "Pomerium corp",
    ]
    assert [targets.enforcer(n) for n in ("default", "edge", "corp")] == [
        "Zero",
        "Pomerium Core",
        "Pomerium",
    ]
    assert [targets.product(n) for n in ("default", "edge", "corp")] == [
        "Pomerium Zero",
        "Pomerium Core",
        "Pomerium",
    ]
    assert targets.console("default") == "the Zero console"
    assert targets.console("edge") == "Pomerium Core edge"
    assert targets.describe("gone") == "Zero cluster gone"  # as capabilities reads it
