from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    """Periodic access reviews: campaigns, their items, decisions and evidence packs."""

    name = "apps.reviews"
    label = "reviews"
    verbose_name = "Access reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.access.services import resources
        from apps.audit import actions

        from . import checks  # noqa: F401  (registers the settings checks)
        from .actions import ReviewAction
        from .schedules import apply_bootstrap_section

        actions.register(ReviewAction)
        resources.register_section("reviews", apply_bootstrap_section)
