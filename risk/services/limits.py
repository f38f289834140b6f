"""Writes on risk limits (SPEC §3, §4).

Ownership: a trader creates limits for themselves and changes their own freely; an
officer creates and changes anyone's. A limit an officer set for someone else is
officer-set: its owner may only tighten it (lower threshold or warning, add a warning,
enable it); loosening, disabling, re-targeting or deleting it is a 403.
"""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from etrms.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from risk.history import history_actor_set
from risk.models import RiskLimit
from risk.services import hooks
from risk.services.alerts import alerts_resolve_for_limit
from risk.services.common import actor_id, actor_is_officer
from risk.validators import symbol_normalize

UPDATABLE_FIELDS = ("symbol", "limit_type", "threshold_value", "warning_value", "enabled", "ladder")
OFFICER_SET_MESSAGE = "This limit was set by a risk officer: you may tighten it, not loosen, disable or delete it."


def _duplicate_exists(*, user_id, symbol, limit_type, exclude_id=None) -> bool:
    queryset = RiskLimit.objects.filter(user_id=user_id, symbol=symbol, limit_type=limit_type)
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    return queryset.exists()


def _conflict(symbol, limit_type) -> Conflict:
    scope = symbol or "all symbols"
    return Conflict(f"A {limit_type} limit for {scope} already exists for this user.")


def _save(limit: RiskLimit, *, force_insert: bool = False) -> None:
    limit.clean()
    if _duplicate_exists(
        user_id=limit.user_id,
        symbol=limit.symbol,
        limit_type=limit.limit_type,
        exclude_id=None if force_insert else limit.pk,
    ):
        raise _conflict(limit.symbol, limit.limit_type)
    try:
        with transaction.atomic():
            limit.save(force_insert=force_insert)
    except IntegrityError as exc:  # a concurrent create of the same limit
        raise _conflict(limit.symbol, limit.limit_type) from exc


def _normalized_symbol(symbol):
    if symbol in (None, ""):
        return None
    return symbol_normalize(symbol)


@transaction.atomic
def limit_create(
    *,
    actor,
    limit_type: str,
    threshold_value: Decimal,
    symbol: str | None = None,
    warning_value: Decimal | None = None,
    enabled: bool = True,
    user_id=None,
    ladder: list | None = None,
) -> RiskLimit:
    """Create a limit for `user_id` (default: the actor). Only an officer may name
    another user; for a trader that is a 404 (nobody else's existence is confirmed)."""
    owner_id = actor.pk if user_id is None else user_id
    if str(owner_id) != str(actor.pk):
        if not actor_is_officer(actor):
            raise NotFound("User not found.")
        if not get_user_model().objects.filter(pk=owner_id).exists():
            raise InvalidInput({"user_id": ["Unknown user."]})
    limit = RiskLimit(
        user_id=owner_id,
        symbol=_normalized_symbol(symbol),
        limit_type=limit_type,
        threshold_value=threshold_value,
        warning_value=warning_value,
        enabled=enabled,
        set_by_id=actor.pk,
        ladder=ladder or [],
    )
    history_actor_set(limit, actor.pk)
    _save(limit, force_insert=True)
    hooks.limits_changed(user_ids={limit.user_id})
    return limit


def _loosens(limit: RiskLimit, changes: dict) -> list[str]:
    """The fields of `changes` that would loosen `limit` (or are not a tightening)."""
    loosened = []
    for field in ("symbol", "limit_type"):
        if field in changes and changes[field] != getattr(limit, field):
            loosened.append(field)
    if "threshold_value" in changes and changes["threshold_value"] > limit.threshold_value:
        loosened.append("threshold_value")
    if "warning_value" in changes and limit.warning_value is not None:
        new = changes["warning_value"]
        if new is None or new > limit.warning_value:
            loosened.append("warning_value")
    if "enabled" in changes and limit.enabled and not changes["enabled"]:
        loosened.append("enabled")
    if "ladder" in changes and not _ladder_keeps(limit.ladder, changes["ladder"] or []):
        loosened.append("ladder")
    return loosened


def _ladder_keeps(old: list, new: list) -> bool:
    """Every step of `old` still acts in `new`: the same action at the same or a lower
    share of the threshold (adding steps tightens; removing or raising one loosens)."""
    return all(
        any(step["do"] == kept["do"] and Decimal(step["at_pct"]) <= Decimal(kept["at_pct"]) for step in new)
        for kept in old
    )


@transaction.atomic
def limit_update(*, actor, limit: RiskLimit, changes: dict) -> RiskLimit:
    """Apply `changes` (any of UPDATABLE_FIELDS). The caller has checked that the actor
    may see `limit` (owner or officer)."""
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidInput({key: ["This field cannot be changed."] for key in sorted(unknown)})
    changes = dict(changes)
    if "symbol" in changes:
        changes["symbol"] = _normalized_symbol(changes["symbol"])
    officer = actor_is_officer(actor)
    if not officer and limit.officer_set:
        loosened = _loosens(limit, changes)
        if loosened:
            raise PermissionDenied(f"{OFFICER_SET_MESSAGE} ({', '.join(loosened)})")
    was_enabled = limit.enabled
    for field, value in changes.items():
        setattr(limit, field, value)
    if officer and actor is not None and str(actor.pk) != str(limit.user_id):
        limit.set_by_id = actor.pk  # an officer's change makes it officer-set
    history_actor_set(limit, actor_id(actor))
    _save(limit)
    if was_enabled and not limit.enabled:
        alerts_resolve_for_limit(limit_id=limit.pk, reason="limit disabled")
    hooks.limits_changed(user_ids={limit.user_id})
    return limit


@transaction.atomic
def limit_delete(*, actor, limit: RiskLimit) -> None:
    if not actor_is_officer(actor) and limit.officer_set:
        raise PermissionDenied(OFFICER_SET_MESSAGE)
    user_id, limit_id = limit.user_id, limit.pk
    alerts_resolve_for_limit(limit_id=limit_id, reason="limit deleted")
    history_actor_set(limit, actor_id(actor))
    limit.delete()
    hooks.limits_changed(user_ids={user_id})


@transaction.atomic
def limit_drawdown_reset(*, actor, limit: RiskLimit) -> RiskLimit:
    """Restart a drawdown limit's peak tracking from now (officer or owner of a
    self-set limit; the caller checks visibility)."""
    if not actor_is_officer(actor) and limit.officer_set:
        raise PermissionDenied(OFFICER_SET_MESSAGE)
    now = timezone.now()
    RiskLimit.objects.filter(pk=limit.pk).update(reset_at=now, equity_peaks={})
    limit.reset_at, limit.equity_peaks = now, {}
    hooks.limits_changed(user_ids={limit.user_id})
    return limit
