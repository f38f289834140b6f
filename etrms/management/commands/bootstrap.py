"""`manage.py bootstrap`: idempotent first-run setup.

Runs the `bootstrap(stdout=...)` function of every project app that has a
`bootstrap.py` module, in INSTALLED_APPS order (accounts first: the admin and the
group; later apps add demo data, default breakers and scheduled tasks).
"""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.core.management.base import BaseCommand

from etrms import embedded_redis

PROJECT_APPS = ("accounts", "risk", "jobs", "realtime", "notifications")


class Command(BaseCommand):
    help = "Create the admin user, the risk_officer group and the defaults (idempotent)."

    def handle(self, *args, **options):
        # Bootstrap writes publish to Redis (index versions, alerts): it must answer.
        with embedded_redis.running_for_command():
            for config in apps.get_app_configs():
                if config.name in PROJECT_APPS and find_spec(f"{config.name}.bootstrap"):
                    import_module(f"{config.name}.bootstrap").bootstrap(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Bootstrap complete."))
