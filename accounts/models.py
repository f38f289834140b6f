import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A desk member. Ids are UUIDs, as the API documents show `user_id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
