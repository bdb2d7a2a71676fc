import logging

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Email and Slack notices about requests and grants, each recorded as a row."""

    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.access import events
        from apps.audit.stream import signals as stream_signals
        from apps.reviews import events as review_events

        from . import services, tasks
        from .receivers import on_compliance_event, on_domain_event, on_stream_alert
        from .slack import RedactWebhookPaths

        services.rows_stored.connect(
            tasks.on_rows_stored, dispatch_uid="notifications.enqueue_stored_rows"
        )
        events.domain_event.connect(on_domain_event, dispatch_uid="notifications.on_domain_event")
        review_events.review_event.connect(
            on_compliance_event, dispatch_uid="notifications.on_review_event"
        )
        stream_signals.stream_alert.connect(
            on_stream_alert, dispatch_uid="notifications.on_stream_alert"
        )

        # urllib3 logs each request line at DEBUG; for a Slack webhook that line holds the
        # credential. Mask it wherever the logs go.
        logger = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(f, RedactWebhookPaths) for f in logger.filters):
            logger.addFilter(RedactWebhookPaths())
