"""The reviewer's forms: bad input becomes field errors, never a 500."""

from __future__ import annotations

from django import forms

from .models import Decision
from .services import MAX_TEXT


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(
        required=False,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required to remove: say why.",
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("decision") == Decision.REMOVE and not (data.get("comment") or "").strip():
            self.add_error("comment", "Say why it should be removed.")
        return data


class KeepSelectedForm(forms.Form):
    items = forms.TypedMultipleChoiceField(coerce=int, choices=())
    comment = forms.CharField(required=False, max_length=MAX_TEXT)

    def __init__(self, *args: object, item_ids: list[int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["items"].choices = [(pk, str(pk)) for pk in item_ids]  # type: ignore[attr-defined]
