from typing import Any

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "apps.access"
    label = "access"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from .models import AccessRequest, Grant, Resource

        # Field-level history with its actor; mirrored into the chained trail (apps.audit).
        # The Slack webhook URL is a credential: kept out of field history entirely (auditlog's
        # masking keeps half the string). resource.changed still names the field.
        auditlog.register(
            Resource, exclude_fields=["updated_at", "sync_generation", "slack_webhook_url"]
        )
        auditlog.register(AccessRequest)
        auditlog.register(Grant)

        from apps.accounts.services import email_changed

        email_changed.connect(_email_changed, dispatch_uid="access.move_grants_to_email")


def _email_changed(
    sender: Any, *, user: Any, old: str, new: str, actor: Any, **kwargs: Any
) -> None:
    from .services import move_grants_to_email

    move_grants_to_email(user, old=old, new=new, actor=actor)
