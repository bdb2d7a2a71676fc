"""People as the identity provider describes them: read-only where the IdP is the source.

Username (the IdP subject), email, name and groups are rewritten from every verified
assertion, and staff/superuser follow from the roles those groups give, so editing them
here would be silently undone. There are no passwords to show or set. Only portal-side
settings stay editable, and each change is audited.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from apps.audit import services as audit
from apps.audit.services import record
from apps.kit.admin_base import ReadOnlyModelAdmin
from apps.kit.admin_lists import FastListAdmin
from apps.kit.text import refuse_hidden

from .actions import AccountAction
from .models import User
from .permissions import code
from .roles import CLAIM_GROUP_PREFIX, MANAGED_GROUP_NAMES
from .services import relink_user
from .timezones import zone_names

IDENTITY_FIELDS = (
    "username",
    "email",
    "email_key",
    "display_name",
    "claim_groups",
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


class RelinkForm(forms.Form):
    new_sub = forms.CharField(
        max_length=150,
        validators=[refuse_hidden],
        label="New identity-provider subject",
        help_text="The sub of the refused sign-in: the audit entry "
        "'auth.assertion_rejected' with reason duplicate_identity names it.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, validators=[refuse_hidden]
    )


@admin.register(User)
class UserAdmin(FastListAdmin):
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

    @admin.display(description="Groups (as the identity provider names them)")
    def claim_groups(self, obj: User) -> str:
        # The Django groups below hold a digest in place of a name too long for them.
        return ", ".join(sorted(obj.group_names())) or "none"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/relink/",
                self.admin_site.admin_view(self.relink_view),
                name="accounts_user_relink",
            ),
            *super().get_urls(),
        ]

    def relink_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Re-link a person to a new IdP subject (an IdP migration); superusers only, audited."""
        if not request.user.is_superuser:
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id)) if object_id.isdigit() else None
        if obj is None:
            raise Http404("No such user.")
        form = RelinkForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                relink_user(
                    obj,
                    new_sub=form.cleaned_data["new_sub"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{obj} now signs in as {obj.username}.")
                return redirect(reverse("admin:accounts_user_change", args=[obj.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Re-link {obj}",
            "original": obj,
            "form": form,
        }
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/accounts/user/relink.html", context, status=status)

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
        with audit.atomic():
            super().save_model(request, obj, form, change)
            if changes:
                record(
                    AccountAction.USER_UPDATED,
                    actor=request.user,
                    target=obj,
                    details={"changes": changes, "via": "admin"},
                )


# --- Groups: read-only ------------------------------------------------------------------------

admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(ReadOnlyModelAdmin, admin.ModelAdmin):
    """Groups, shown and never edited: a role group's rights come from the code
    (``roles.ROLE_PERMISSIONS``), a claim group's name from the identity provider, and no
    other group grants anything (``permissions``)."""

    list_display = ("name", "kind", "original_name")
    search_fields = ("name", "claim__name")
    fields = ("name", "kind", "original_name", "rights")
    readonly_fields = fields
    list_select_related = ("claim",)

    @admin.display(description="kind")
    def kind(self, obj: Group) -> str:
        if obj.name in MANAGED_GROUP_NAMES:
            return "portal role (rights from the code, members from PORTAL_* settings)"
        if obj.name.startswith(CLAIM_GROUP_PREFIX):
            return "identity-provider group (grants no permission)"
        return "other (grants no permission)"

    @admin.display(description="name at the identity provider")
    def original_name(self, obj: Group) -> str:
        claim = getattr(obj, "claim", None)
        if claim is not None:
            return claim.name
        if obj.name.startswith(CLAIM_GROUP_PREFIX):
            return obj.name[len(CLAIM_GROUP_PREFIX) :]
        return "-"

    @admin.display(description="permissions")
    def rights(self, obj: Group) -> str:
        return ", ".join(code(p) for p in obj.permissions.select_related("content_type")) or "none"
