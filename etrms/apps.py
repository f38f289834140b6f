from django.apps import AppConfig


class EtrmsConfig(AppConfig):
    name = "etrms"
    verbose_name = "ETRMS platform"
