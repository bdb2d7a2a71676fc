from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Email and Slack notices about requests and grants, each recorded as a row."""

    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"
