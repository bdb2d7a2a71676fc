from django.apps import AppConfig


class OncallConfig(AppConfig):
    """Who is on call now, read live from PagerDuty and Opsgenie for auto-approval rules."""

    name = "apps.oncall"
    label = "oncall"
    verbose_name = "On call"

    def ready(self) -> None:
        from apps.access import oncall

        from .cache import Cached
        from .opsgenie import OpsgenieSource
        from .pagerduty import PagerDutySource

        oncall.register("pagerduty", Cached(PagerDutySource()))
        oncall.register("opsgenie", Cached(OpsgenieSource()))
