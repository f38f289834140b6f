"""Writes on users and roles."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

# Models a risk officer manages in the admin: every model of these apps.
OFFICER_APP_LABELS = ("accounts", "risk", "jobs", "realtime", "django_celery_beat")
# ...except these, which stay with superusers.
OFFICER_EXCLUDED_MODELS = {("accounts", "user")}


@transaction.atomic
def admin_user_ensure(*, username: str, email: str = "") -> tuple[object, str | None]:
    """Create the superuser `username` if absent. Returns (user, generated password or None)."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(username=username, email=email, password=password)
    return user, password


@transaction.atomic
def risk_officer_group_sync() -> Group:
    """Give the `risk_officer` group every permission on the models officers manage."""
    group, _ = Group.objects.get_or_create(name=settings.RISK_OFFICER_GROUP)
    permissions = [
        permission
        for permission in Permission.objects.filter(content_type__app_label__in=OFFICER_APP_LABELS).select_related(
            "content_type"
        )
        if (permission.content_type.app_label, permission.content_type.model) not in OFFICER_EXCLUDED_MODELS
    ]
    group.permissions.set(permissions)
    return group


@transaction.atomic
def risk_officer_grant(*, user) -> None:
    """Make `user` a risk officer: member of the group and staff (so the admin lets them in)."""
    group = risk_officer_group_sync()
    user.groups.add(group)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
