from typing import Any

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "apps.access"
    label = "access"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from apps.audit import actions

        from .actions import AccessAction
        from .models import Resource

        actions.register(AccessAction)

        # Field-level history of admin-edited configuration, with its actor, for the admin's
        # history of a resource. It is not the audit trail: resources.save_resource writes the
        # one chained entry per change (old and new values, secrets masked). Requests and
        # grants change only through the services, whose chained entries tell their story.
        # The Slack webhook URL is a credential: kept out of field history entirely (auditlog's
        # masking keeps half the string); resource.changed names the field, masked.
        auditlog.register(
            Resource, exclude_fields=["updated_at", "sync_generation", "slack_webhook_url"]
        )

        from apps.accounts.services import email_changed, identity_retired

        email_changed.connect(_email_changed, dispatch_uid="access.move_grants_to_email")
        identity_retired.connect(_identity_retired, dispatch_uid="access.end_access_of")


def _email_changed(
    sender: Any, *, user: Any, old: str, new: str, actor: Any, **kwargs: Any
) -> None:
    from .services import move_grants_to_email

    move_grants_to_email(user, old=old, new=new, actor=actor)


def _identity_retired(sender: Any, *, user: Any, reason: str, **kwargs: Any) -> None:
    from .services import end_access_of

    end_access_of(user, reason=reason)
