from django.apps import AppConfig


class ZeroConfig(AppConfig):
    """The Zero client, the wire contract, the sync (and its bookkeeping row), the simulator."""

    name = "apps.zero"
    label = "zero"
    verbose_name = "Pomerium Zero"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.access import events
        from apps.audit import actions

        from .actions import ZeroAction
        from .receivers import enqueue_sync

        actions.register(ZeroAction)

        events.policy_changed.connect(enqueue_sync, dispatch_uid="zero.enqueue_sync")
