"""Roles (SPEC §3): every authenticated user is a trader; a risk officer is a
superuser or a member of the `risk_officer` group. Being staff alone grants nothing."""

from django.conf import settings


def is_risk_officer(user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    claimed = getattr(user, "is_risk_officer", None)
    if claimed is not None:  # a token user: the role is a claim of the token
        return claimed
    if user.is_superuser:
        return True
    cached = getattr(user, "_etrms_is_officer", None)
    if cached is None:
        cached = user.groups.filter(name=settings.RISK_OFFICER_GROUP).exists()
        user._etrms_is_officer = cached
    return cached


def visible_to(queryset, viewer, *, owner: str = "user_id"):
    """Who sees what (SPEC §3), the one rule every app's selectors apply: a risk officer
    sees every row, anyone else only the rows whose `owner` field is theirs."""
    if is_risk_officer(viewer):
        return queryset
    return queryset.filter(**{owner: viewer.pk})
