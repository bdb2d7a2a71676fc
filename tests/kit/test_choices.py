"""``apps.kit.choices.display`` gives what Django's ``get_FOO_display()`` gives."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models
from django.utils.translation import gettext_lazy, override

from apps.access.models import AccessRequest, Grant
from apps.access.states import GrantState, RequestKind, RequestState, SyncStatus
from apps.kit import choices


@pytest.mark.parametrize(
    ("model", "name", "values"),
    [
        (AccessRequest, "state", [*RequestState.values, "no-such-state", ""]),
        (AccessRequest, "kind", [*RequestKind.values, "other"]),
        (Grant, "state", [*GrantState.values, "gone"]),
        (Grant, "sync_status", [*SyncStatus.values, None]),
    ],
)
def test_display_is_djangos(model: type[models.Model], name: str, values: list[Any]) -> None:
    for value in values:
        obj = model(**{name: value})
        django = getattr(obj, f"get_{name}_display")()
        ours = choices.display(obj, name)
        assert ours == django and type(ours) is type(django), (name, value)


def test_callable_choices_are_read_on_every_call() -> None:
    """Choices given as a callable may change between calls: they are not kept."""
    current = [("a", "Alpha")]
    field = models.CharField(choices=lambda: list(current))
    field.set_attributes_from_name("letter")
    assert choices.label(field, "a") == "Alpha"
    current[:] = [("a", "Aleph")]
    assert choices.label(field, "a") == "Aleph"


def test_lazy_labels_follow_the_language() -> None:
    field = models.CharField(choices=[("yes", gettext_lazy("Yes"))])
    field.set_attributes_from_name("answer")
    with override("fr"):
        assert choices.label(field, "yes") == "Oui"
    with override("en"):
        assert choices.label(field, "yes") == "Yes"
