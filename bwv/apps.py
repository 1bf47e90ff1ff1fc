"""The Django admin, configured to use our admin site (bwv.admin_site) instead of Django's own."""

from django.contrib.admin import apps as admin_apps


class BwvAdminConfig(admin_apps.AdminConfig):
    # Not the default configuration of the `bwv` app itself: only the admin's, named in settings.
    default = False
    default_site = "bwv.admin_site.AdminSite"
