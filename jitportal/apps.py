"""The project's own app config: it registers the configuration checks (``checks``)."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "jitportal"
    label = "jitportal"
    verbose_name = "jitportal"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the configuration checks)
