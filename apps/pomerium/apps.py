from django.apps import AppConfig


class PomeriumConfig(AppConfig):
    """Where policies live: the port and its adapters (Zero's v0 API, ConfigService for Core,
    Enterprise and Zero), their wire contracts, the sync and its bookkeeping rows.

    The label stays ``zero``: the tables, migrations, permissions and audit action codes
    (``zero.*``) written before the app was named for what it serves keep working."""

    name = "apps.pomerium"
    label = "zero"
    verbose_name = "Pomerium"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.access import events
        from apps.audit import actions

        from .actions import ZeroAction
        from .receivers import enqueue_sync

        actions.register(ZeroAction)

        events.policy_changed.connect(enqueue_sync, dispatch_uid="zero.enqueue_sync")
