"""``manage.py bootstrap``: policy as code, idempotent, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.access.actions import AccessAction
from apps.access.models import Resource
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "resources.example.yaml"


def semantic_actions() -> list[str]:
    return list(AuditEvent.objects.in_chain_order().values_list("action", flat=True))


def snapshot() -> list[dict]:
    return list(Resource.objects.order_by("slug").values())


def run(path: Path) -> str:
    from io import StringIO

    out = StringIO()
    call_command("bootstrap", str(path), stdout=out)
    return out.getvalue().strip()


def test_example_file_applies_and_second_run_changes_nothing() -> None:
    assert run(EXAMPLE) == "bootstrap: 3 created, 0 updated, 0 unchanged"
    first = snapshot()
    entries = AuditEvent.objects.count()
    assert semantic_actions() == [AccessAction.RESOURCE_CREATED] * 3
    assert run(EXAMPLE) == "bootstrap: 0 created, 0 updated, 3 unchanged"
    assert snapshot() == first
    assert AuditEvent.objects.count() == entries
    prod_db = Resource.objects.get(slug="prod-db")
    assert (prod_db.approvals_required, prod_db.ticket_required) == (2, True)
    assert Resource.objects.get(slug="grafana-admin").sync_generation == 1


def test_update_is_audited_with_changed_fields(tmp_path: Path) -> None:
    run(EXAMPLE)
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "resources": [
                    {"slug": "prod-db", "max_duration_minutes": 120, "duration_choices": [30, 60]}
                ]
            }
        )
    )
    assert run(path) == "bootstrap: 0 created, 1 updated, 0 unchanged"
    event = AuditEvent.objects.filter(action=AccessAction.RESOURCE_CHANGED).get()
    assert event.details == {
        "changed": ["duration_choices", "max_duration_minutes"],
        "changes": {
            "duration_choices": [[30, 60, 120], [30, 60]],
            "max_duration_minutes": [240, 120],
        },
    }
    assert event.actor_label == "system"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("resources: [", "not valid YAML/JSON"),
        ("other: 1", "top-level 'resources'"),
        ("resources: [{name: X}]", "'slug' is required"),
        ("resources: [{slug: x, name: X, colour: red}]", "unknown setting(s) colour"),
        ("resources: [{slug: x, name: X, duration_choices: [9999]}]", "duration_choices"),
        (
            "resources: [{slug: x, name: X, base_ppl: [{allow: {and: [{nonsense: 1}]}}]}]",
            "base_ppl",
        ),
        ("resources: [{slug: x, name: X}, {slug: x, name: Y}]", "appears twice"),
    ],
)
def test_bad_file_exits_2_with_one_line_and_changes_nothing(
    tmp_path: Path, content: str, message: str
) -> None:
    run(EXAMPLE)
    before, entries = snapshot(), AuditEvent.objects.count()
    path = tmp_path / "bad.yaml"
    # A valid entry first: it must not be applied when a later one is bad.
    path.write_text(
        content.replace("resources: [", "resources: [{slug: new-one, name: New}, ", 1)
        if content.startswith("resources: [{")
        else content
    )
    with pytest.raises(CommandError) as info:
        run(path)
    assert info.value.returncode == 2
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert snapshot() == before
    assert AuditEvent.objects.count() == entries


def test_missing_file_exits_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read") as info:
        run(tmp_path / "nope.yaml")
    assert info.value.returncode == 2


def test_slack_webhook_never_enters_the_audit_trail(tmp_path: Path) -> None:
    secret = "https://hooks.slack.com/services/T000/B000/very-secret-token"
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps({"resources": [{"slug": "s", "name": "S", "slack_webhook_url": secret}]})
    )
    run(path)
    path.write_text(
        json.dumps({"resources": [{"slug": "s", "name": "S", "slack_webhook_url": secret + "2"}]})
    )
    run(path)
    dumped = json.dumps(list(AuditEvent.objects.values("details", "target_repr")))
    assert "very-secret-token" not in dumped
    changed = AuditEvent.objects.get(action=AccessAction.RESOURCE_CHANGED)
    assert changed.details == {
        "changed": ["slack_webhook_url"],
        "changes": {"slack_webhook_url": "***"},  # a credential: named, never shown
    }


def test_levels_and_schedule_from_the_example_file() -> None:
    run(EXAMPLE)
    grafana = Resource.objects.get(slug="grafana-admin")
    levels = list(grafana.levels.values_list("slug", "rank", "criteria", "max_duration_minutes"))
    assert levels == [
        ("read-only", 10, [{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}], 240),
        ("full", 20, [], None),
    ]
    created = AuditEvent.objects.get(
        action=AccessAction.RESOURCE_CREATED, resource_slug="grafana-admin"
    )
    assert [lv["slug"] for lv in created.details["levels"]] == ["read-only", "full"]
    assert Resource.objects.get(slug="prod-db").schedule == {
        "days": "mon-fri",
        "after": "09:00",
        "before": "17:00",
        "timezone": "Europe/Berlin",
    }


def test_changed_levels_are_an_update_and_bad_levels_change_nothing(tmp_path: Path) -> None:
    run(EXAMPLE)
    path = tmp_path / "r.json"
    base = {"slug": "grafana-admin"}
    path.write_text(
        json.dumps(
            {"resources": [{**base, "levels": [{"slug": "full", "name": "Full", "rank": 1}]}]}
        )
    )
    assert run(path) == "bootstrap: 0 created, 1 updated, 0 unchanged"
    assert list(
        Resource.objects.get(slug="grafana-admin").levels.values_list("slug", flat=True)
    ) == ["full"]
    before = AuditEvent.objects.count()
    for bad, message in [
        ([{"slug": "x", "criteria": [{"nope": 1}]}], "unknown criterion"),
        ([{"slug": "x", "colour": "red"}], "unknown setting"),
        ([{"slug": "x", "rank": 1}, {"slug": "y", "rank": 1}], "must be unique"),
        ([{"slug": "x", "max_duration_minutes": 100000}], "May not exceed the resource"),
        ("full", "must be a list"),
    ]:
        path.write_text(json.dumps({"resources": [{**base, "levels": bad}]}))
        with pytest.raises(CommandError, match=message):
            run(path)
    assert AuditEvent.objects.count() == before
    assert Resource.objects.get(slug="grafana-admin").levels.count() == 1
