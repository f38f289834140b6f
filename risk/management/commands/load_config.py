"""`manage.py load_config PATH`: apply a snapshot written by `POST /config/save`.

PATH is relative to CONFIG_DIR (as `config_path` was) or an absolute path the operator
names. Everything is validated before anything is written.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError

from etrms.errors import InvalidInput
from risk.services.config import config_load


class Command(BaseCommand):
    help = "Load a configuration snapshot (global, symbol and exchange settings, circuit breakers)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The snapshot: relative to CONFIG_DIR, or absolute.")
        parser.add_argument(
            "--prune-breakers", action="store_true", help="Delete circuit breakers the snapshot does not name."
        )

    def handle(self, *args, path, prune_breakers, **options):
        file = Path(path)
        if not file.is_absolute():
            file = Path(settings.CONFIG_DIR) / file
        try:
            snapshot = json.loads(file.read_text())
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}") from exc
        try:
            summary = config_load(snapshot=snapshot, prune_breakers=prune_breakers)
        except InvalidInput as exc:
            raise CommandError(f"{file} is not a valid snapshot: {exc.detail}") from exc
        except DjangoValidationError as exc:
            raise CommandError(f"{file} is not a valid snapshot: {exc.messages}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {file}: global settings {'applied' if summary['global'] else 'absent'}, "
                f"{summary['symbols']} symbol config(s), {summary['exchanges']} exchange config(s), "
                f"{summary['breakers_created']} breaker(s) created, {summary['breakers_updated']} updated."
            )
        )
