from django.apps import AppConfig


class EtrmsConfig(AppConfig):
    name = "etrms"
    verbose_name = "ETRMS platform"

    def ready(self):
        from etrms.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
