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
        auditlog.register(Resource, exclude_fields=["updated_at", "sync_generation"])
        auditlog.register(AccessRequest)
        auditlog.register(Grant)
