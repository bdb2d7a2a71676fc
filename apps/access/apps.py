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
