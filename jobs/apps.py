from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Background jobs"

    def ready(self):
        # Every app's handlers.py registers its job handlers.
        autodiscover_modules("handlers")
        from etrms.metrics import scrape_collector_register
        from jobs import worker  # noqa: F401  (connects the worker's supervisor signals)
        from jobs.broker import QueueDepthCollector

        scrape_collector_register(QueueDepthCollector())
