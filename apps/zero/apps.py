from django.apps import AppConfig


class ZeroConfig(AppConfig):
    """The Pomerium Zero client, the policy renderer and the test simulator (no models)."""

    name = "apps.zero"
    label = "zero"
    verbose_name = "Pomerium Zero"
    default_auto_field = "django.db.models.BigAutoField"
