"""Staff accounts: signing in (password, then a second factor), backup codes, resets, API tokens,
and the Django admin behind both factors."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate

from common.roles import roles_sync


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Staff accounts"

    def ready(self) -> None:
        # Roles are groups with the permissions of every app, which exist only after all the
        # migrations ran.
        post_migrate.connect(roles_sync, dispatch_uid="common.roles.roles_sync")
        from accounts import checks  # noqa: F401 -- registers the role map's check


class AdminConfig(admin_apps.AdminConfig):
    """The Django admin on our own site (accounts.admin_site): staff *and* both factors."""

    # Not this app's configuration: only the admin's, named in settings instead of Django's own.
    default = False
    default_site = "accounts.admin_site.AdminSite"
