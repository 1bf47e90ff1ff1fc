from django.apps import AppConfig


class EstateConfig(AppConfig):
    name = "estate"
    verbose_name = "Camera estate administration"
