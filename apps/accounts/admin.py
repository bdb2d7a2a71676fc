"""People as the identity provider describes them: read-only where the IdP is the source.

Username (the IdP subject), email, name and groups are rewritten from every verified
assertion, and staff/superuser follow from the roles those groups give, so editing them
here would be silently undone. There are no passwords to show or set. Only portal-side
settings stay editable, and each change is audited.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest

from apps.audit.models import AuditAction
from apps.audit.services import record

from .models import User
from .timezones import zone_names

IDENTITY_FIELDS = (
    "username",
    "email",
    "display_name",
    "groups",
    "is_staff",
    "is_superuser",
    "last_login",
    "date_joined",
)
EDITABLE_FIELDS = ("is_active", "time_zone", "notify_expiry")


class UserAdminForm(forms.ModelForm):
    class Meta:
        model = User
        fields = EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "time_zone" in self.fields:
            self.fields["time_zone"] = forms.ChoiceField(
                required=False,
                choices=[("", "The browser's zone")] + [(z, z) for z in zone_names()],
                help_text=User._meta.get_field("time_zone").help_text,
            )


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    form = UserAdminForm
    list_display = (
        "email",
        "display_name",
        "username",
        "is_active",
        "is_staff",
        "is_superuser",
        "last_login",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("email", "display_name", "username")
    ordering = ("email",)
    readonly_fields = IDENTITY_FIELDS
    fieldsets = (
        (
            "From the identity provider (read-only)",
            {
                "fields": IDENTITY_FIELDS,
                "description": "The username is the identity provider's stable subject. "
                "These fields follow every new Pomerium assertion.",
            },
        ),
        ("Portal", {"fields": EDITABLE_FIELDS}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people appear when Pomerium first vouches for them

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # their requests, grants and audit entries keep pointing at them

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(
        self,
        request: HttpRequest,
        obj: User,
        form: forms.ModelForm,
        change: bool,
    ) -> None:
        changes = {
            name: [form.initial.get(name), form.cleaned_data.get(name)]
            for name in form.changed_data
        }
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if changes:
                record(
                    AuditAction.USER_UPDATED,
                    actor=request.user,
                    target=obj,
                    details={"changes": changes, "via": "admin"},
                )
