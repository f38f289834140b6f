"""`manage.py rotate_credentials`: re-encrypt every stored exchange credential with the
first key of FIELD_ENCRYPTION_KEY (put the new key first, run this, then drop the old)."""

from django.core.management.base import BaseCommand

from accounts.services.credentials import credentials_rotate


class Command(BaseCommand):
    help = "Re-encrypt exchange credentials with the first FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        count = credentials_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the credentials of {count} exchange account(s)."))
