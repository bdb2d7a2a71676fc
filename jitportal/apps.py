"""The project's own app configs: the portal's (it registers the configuration checks,
``checks``) and the admin's, whose default site is the portal's (``PortalAdminSite``)."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """``django.contrib.admin`` with ``apps.kit.admin_site.PortalAdminSite`` as
    ``admin.site`` (Django's documented way to replace the default site)."""

    default_site = "apps.kit.admin_site.PortalAdminSite"


class PortalConfig(AppConfig):
    name = "jitportal"
    label = "jitportal"
    verbose_name = "jitportal"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the configuration checks)
