from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import jitportal.checks  # noqa: F401  (registers the configuration checks)
        from apps.audit import actions
        from apps.audit.views import register_role_check

        from .actions import AccountAction
        from .roles import AUDITOR, holds

        actions.register(AccountAction)

        register_role_check(lambda user: holds(user, AUDITOR))
