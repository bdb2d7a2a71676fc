from django.apps import AppConfig


class SlackConfig(AppConfig):
    """The portal's Slack app: a message per request with verified, identity-bound buttons."""

    name = "apps.slack"
    label = "slack"
    verbose_name = "Slack app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.access import events
        from apps.audit import actions
        from apps.notifications import channels
        from apps.notifications.models import Channel

        from .actions import SlackAction
        from .delivery import on_domain_event, send

        actions.register(SlackAction)
        channels.register(Channel.SLACK_APP, send)
        events.domain_event.connect(on_domain_event, dispatch_uid="slack.on_domain_event")
