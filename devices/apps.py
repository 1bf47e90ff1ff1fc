from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Cameras, officers and docks"

    def ready(self) -> None:
        from bwv.roles import roles_sync

        # Groups need the permissions of every app, which exist only after all migrations ran.
        post_migrate.connect(roles_sync, dispatch_uid="bwv.roles_sync")
