"""Forms for the export page and the access reports: bad input becomes form errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from apps.access.models import Resource

from .export import FORMATS, ExportFilters, parse_bound
from .models import AuditAction


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


class ExportForm(forms.Form):
    since = InstantField(label="From", help_text="Inclusive. A date means 00:00 UTC that day.")
    until = InstantField(
        end=True, label="Until", help_text="Exclusive. A date includes that whole day."
    )
    actor = forms.CharField(
        required=False, max_length=254, help_text="Email of the actor, or 'system'."
    )
    resource = forms.SlugField(required=False, max_length=64, help_text="Resource slug.")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
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


class AccessReportForm(forms.Form):
    """'Who had access to X between T1 and T2' (``between=True``) or 'who has access now'."""

    resource = forms.ModelChoiceField(
        queryset=Resource.objects.order_by("slug"), to_field_name="slug", empty_label="All"
    )
    start = InstantField(label="From", help_text="Inclusive; a date means 00:00 UTC.")
    end = InstantField(end=True, label="Until", help_text="Exclusive; a date includes that day.")

    def __init__(self, *args: Any, between: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.between = between
        if between:
            self.fields["resource"].empty_label = None  # type: ignore[attr-defined]
            self.fields["start"].required = True
            self.fields["end"].required = True
        else:
            self.fields["resource"].required = False
            del self.fields["start"]
            del self.fields["end"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("start"), data.get("end")
        if self.between and start and end and end <= start:
            self.add_error("end", "Must be later than From.")
        return data
