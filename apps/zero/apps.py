from django.apps import AppConfig


class ZeroConfig(AppConfig):
    """The Zero client, the PPL renderer, the sync (and its bookkeeping row), the simulator."""

    name = "apps.zero"
    label = "zero"
    verbose_name = "Pomerium Zero"
    default_auto_field = "django.db.models.BigAutoField"
