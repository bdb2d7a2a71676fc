"""Forms for the export page: bad input becomes form errors.

``InstantField`` is generic (any ISO 8601 bound); the access reports' form reuses it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from . import actions
from .export import FORMATS, ExportFilters, parse_bound


class InstantField(forms.CharField):
    """An ISO 8601 date or date-time (UTC when no offset), as an aware instant.

    ``end=True`` reads a bare date as the end of that day (the start of the next).
    """

    def __init__(self, *, end: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={"placeholder": "2026-11-01 or 2026-11-01T09:30Z", "maxlength": "40"}
            ),
        )
        super().__init__(**kwargs)
        self.end = end

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        if len(text) > 40:
            raise forms.ValidationError("Too long for a date or date-time.", code="invalid")
        try:
            return parse_bound(text, end=self.end)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


def _action_choices() -> list[tuple[str, str]]:
    return [("", "Any action"), *actions.choices()]


class ExportForm(forms.Form):
    since = InstantField(label="From", help_text="Inclusive. A date means 00:00 UTC that day.")
    until = InstantField(
        end=True, label="Until", help_text="Exclusive. A date includes that whole day."
    )
    actor = forms.CharField(
        required=False, max_length=254, help_text="Email of the actor, or 'system'."
    )
    resource = forms.SlugField(required=False, max_length=64, help_text="Resource slug.")
    action = forms.ChoiceField(required=False, choices=_action_choices)
    format = forms.ChoiceField(
        choices=[("csv", "CSV (spreadsheets)"), ("jsonl", "JSON Lines (SIEM, verify_audit)")],
        initial="csv",
        widget=forms.RadioSelect,
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "Must be later than From.")
        if data.get("format") not in FORMATS:
            self.add_error("format", "Choose CSV or JSON Lines.")
        return data

    def filters(self) -> ExportFilters:
        data = self.cleaned_data
        return ExportFilters(
            since=data["since"],
            until=data["until"],
            actor=data["actor"].strip().lower(),
            resource=data["resource"],
            action=data["action"],
        )
