from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Installed only when ``DEBUG`` is on (jitportal/settings.py): registers the demo and
    simulator management commands. It has no models."""

    name = "devtools"
    label = "devtools"
    verbose_name = "Development tools"
