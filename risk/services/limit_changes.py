"""Four eyes for loosening (SPEC §12, issue 15 item 6).

With `four_eyes` on in the global configuration (default off, so a one-person desk
still works), a risk officer's loosening of an officer-set limit (threshold or warning
raised, warning removed, disabled, re-targeted, deleted) is not applied: it becomes a
pending `LimitChange` that a *different* officer approves (API or admin), which applies
it through the same limit services. Tightening is immediate, as is any change to a
limit the owner set themself. The requester may withdraw a pending change. A change
that mixes loosening and tightening waits as a whole. One pending change per limit.
"""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from etrms.errors import Conflict, NotFound, PermissionDenied
from etrms.formatting import decimal_str
from etrms.roles import visible_to
from risk.models import LimitChange, LimitChangeKind, LimitChangeStatus, RiskLimit
from risk.services.common import actor_id, actor_is_officer
from risk.services.config import global_config_get

# The limit services' own rule for what loosens a limit and how symbols are normalized.
from risk.services.limits import _loosens, _normalized_symbol, limit_delete, limit_update

DECIMAL_FIELDS = ("threshold_value", "warning_value")
OTHER_OFFICER = "Four eyes: a different risk officer must approve this change."
FOUR_EYES_HELD = "Four eyes: this loosening waits for a different risk officer's approval; nothing changed yet"


def _as_json(values: dict) -> dict:
    return {key: (decimal_str(value) if isinstance(value, Decimal) else value) for key, value in values.items()}


def _from_json(values: dict) -> dict:
    return {
        key: (Decimal(value) if key in DECIMAL_FIELDS and value is not None else value) for key, value in values.items()
    }


def _loosened_under_four_eyes(*, actor, limit: RiskLimit, changes: dict | None) -> list[str]:
    """What `changes` (None: a deletion) loosens when four eyes applies, else []."""
    if not limit.officer_set or not actor_is_officer(actor) or not global_config_get().four_eyes:
        return []
    if changes is None:
        return ["deleted"]
    return _loosens(limit, changes)


def _request(*, actor, limit: RiskLimit, kind: str, changes: dict, loosened: list[str]) -> LimitChange:
    if kind == LimitChangeKind.UPDATE:  # refuse now what approval could not apply
        proposed = RiskLimit(**{f.attname: getattr(limit, f.attname) for f in RiskLimit._meta.concrete_fields})
        for field, value in changes.items():
            setattr(proposed, field, value)
        proposed.clean()
    previous = {field: getattr(limit, field) for field in changes} if changes else {}
    change = LimitChange(
        limit=limit,
        limit_ref=str(limit.pk),
        user_id=limit.user_id,
        kind=kind,
        changes=_as_json(changes),
        previous=_as_json(previous),
        loosens=loosened,
        requested_by_id=actor_id(actor),
    )
    try:
        with transaction.atomic():
            change.save(force_insert=True)
    except IntegrityError as exc:
        pending = LimitChange.objects.filter(limit=limit, status=LimitChangeStatus.PENDING).first()
        raise Conflict(
            f"A change of this limit is already pending approval ({pending.pk if pending else 'unknown'}): "
            "withdraw it or have it approved first."
        ) from exc
    return change


@transaction.atomic
def limit_update_or_request(*, actor, limit: RiskLimit, changes: dict) -> RiskLimit | LimitChange:
    """`limit_update`, unless four eyes holds a loosening back: then the pending change."""
    changes = dict(changes)
    if "symbol" in changes:
        changes["symbol"] = _normalized_symbol(changes["symbol"])
    loosened = _loosened_under_four_eyes(actor=actor, limit=limit, changes=changes)
    if not loosened:
        return limit_update(actor=actor, limit=limit, changes=changes)
    return _request(actor=actor, limit=limit, kind=LimitChangeKind.UPDATE, changes=changes, loosened=loosened)


@transaction.atomic
def limit_delete_or_request(*, actor, limit: RiskLimit) -> LimitChange | None:
    """`limit_delete` (None), unless four eyes holds it back: then the pending change."""
    loosened = _loosened_under_four_eyes(actor=actor, limit=limit, changes=None)
    if not loosened:
        limit_delete(actor=actor, limit=limit)
        return None
    return _request(actor=actor, limit=limit, kind=LimitChangeKind.DELETE, changes={}, loosened=loosened)


def _pending_locked(change_id) -> LimitChange:
    change = LimitChange.objects.select_for_update().filter(pk=change_id).first()
    if change is None:
        raise NotFound("Limit change not found.")
    if change.status != LimitChangeStatus.PENDING:
        raise Conflict(f"This change is {change.status}: only a pending change can be decided.")
    return change


@transaction.atomic
def limit_change_approve(*, actor, change_id) -> LimitChange:
    """A risk officer other than the requester approves: the change is applied now."""
    if not actor_is_officer(actor):
        raise PermissionDenied("Only a risk officer approves limit changes.")
    change = _pending_locked(change_id)
    if str(change.requested_by_id) == str(actor_id(actor)):
        raise PermissionDenied(OTHER_OFFICER)
    limit = RiskLimit.objects.select_for_update().filter(pk=change.limit_id).first()
    if limit is None:
        raise Conflict("The limit no longer exists: withdraw this change.")
    if change.kind == LimitChangeKind.DELETE:
        limit_delete(actor=actor, limit=limit)
    else:
        limit_update(actor=actor, limit=limit, changes=_from_json(change.changes))
    change.status = LimitChangeStatus.APPROVED
    change.decided_by_id, change.decided_at = actor_id(actor), timezone.now()
    change.save(update_fields=["status", "decided_by", "decided_at"])
    return change


@transaction.atomic
def limit_change_withdraw(*, actor, change_id) -> LimitChange:
    """The requester withdraws a pending change; nothing is applied."""
    if not actor_is_officer(actor):
        raise PermissionDenied("Only a risk officer withdraws limit changes.")
    change = _pending_locked(change_id)
    if str(change.requested_by_id) != str(actor_id(actor)):
        raise PermissionDenied("Only the officer who requested this change may withdraw it.")
    change.status = LimitChangeStatus.WITHDRAWN
    change.decided_by_id, change.decided_at = actor_id(actor), timezone.now()
    change.save(update_fields=["status", "decided_by", "decided_at"])
    return change


def limit_changes_list(*, viewer):
    """Limit changes, newest first: an officer sees all, a trader those of their limits
    (the list's filters: `risk.filters.LimitChangeFilter`)."""
    return visible_to(LimitChange.objects.all(), viewer).order_by("-requested_at")
