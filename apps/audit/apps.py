from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import actions, receivers  # noqa: F401  (receivers connects the Celery hooks)
        from .stream import checks  # noqa: F401  (registers the stream's settings checks)
        from .stream.actions import StreamAction

        actions.register(StreamAction)
