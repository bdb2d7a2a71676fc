"""The access-report form of the admin: bad input becomes form errors, never a 500."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from apps.audit.forms import InstantField

from .models import Resource


class AccessReportForm(forms.Form):
    """'Who had access to X between T1 and T2' (``between=True``) or 'who has access now'."""

    resource = forms.ModelChoiceField(
        queryset=Resource.objects.order_by("slug"), to_field_name="slug", empty_label="All"
    )
    start = InstantField(label="From", help_text="Inclusive; a date means 00:00 UTC.")
    end = InstantField(end=True, label="Until", help_text="Exclusive; a date includes that day.")

    def __init__(
        self, *args: Any, between: bool, resources: QuerySet[Resource] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.between = between
        if resources is not None:  # only what the viewer may see
            self.fields["resource"].queryset = resources.order_by("slug")  # type: ignore[attr-defined]
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
