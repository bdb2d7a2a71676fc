from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.models import Group
        from django.db.models.signals import m2m_changed

        from apps.audit import actions
        from apps.audit.views import register_role_check

        from .actions import AccountAction
        from .permissions import audit_outside_changes
        from .roles import may_export

        actions.register(AccountAction)
        m2m_changed.connect(
            audit_outside_changes,
            sender=Group.permissions.through,
            dispatch_uid="accounts.audit_group_permissions",
        )

        register_role_check(may_export)
