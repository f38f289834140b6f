"""`manage.py rotate_webhook_secrets`: re-encrypt every webhook's signing secret with the
first key of FIELD_ENCRYPTION_KEY, as `rotate_credentials` does for exchange credentials
(put the new key first, run both, then drop the old)."""

from django.core.management.base import BaseCommand

from notifications.services.endpoints import endpoint_secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt webhook signing secrets with the first FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        count = endpoint_secrets_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {count} webhook endpoint(s)."))
