"""What went out: notifications are a read-only record here; superusers may retry failures.

Rows are written only by the outbox (``services``); nobody adds, edits or deletes them
in the admin. Retrying resets a failed row's attempts and enqueues it again.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from apps.kit.admin_base import ReadOnlyModelAdmin
from apps.kit.admin_lists import FastListAdmin

from . import services
from .models import Notification, Status


@admin.register(Notification)
class NotificationAdmin(ReadOnlyModelAdmin, FastListAdmin):
    list_display = (
        "created_at",
        "event",
        "channel",
        "recipient",
        "short_subject",
        "status",
        "attempts",
        "sent_at",
        "short_error",
        "request_id",
        "grant_id",
    )
    list_filter = ("status", "channel", "event")
    search_fields = ("recipient", "subject", "=request__id", "=grant__id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    actions = ("retry_selected",)
    fields = (
        "event",
        "channel",
        "recipient",
        "subject",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "request",
        "grant",
        "body",
        "body_html",
        "payload",
    )

    @admin.display(description="subject")
    def short_subject(self, obj: Notification) -> str:
        return Truncator(obj.subject).chars(70)

    @admin.display(description="last error")
    def short_error(self, obj: Notification) -> str:
        return Truncator(obj.last_error).chars(60)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    @admin.action(description="Retry selected failed notifications", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        selected = list(queryset.values_list("pk", "status"))
        count = services.retry_failed([pk for pk, _ in selected])
        skipped = sum(1 for _, status in selected if status != Status.FAILED)
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} skipped: only failed notifications are retried.",
                messages.WARNING,
            )
