"""Writes on circuit breaker definitions (SPEC §5). Trips and actions: `risk.services.trips`."""

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import serializers

from etrms.api.inputs import PositiveDecimalField, StrictSerializer
from etrms.errors import Conflict, InvalidInput
from risk.constants import BreakerAction, ConditionType
from risk.history import history_actor_set
from risk.models import MONEY, BreakerTrip, CircuitBreaker
from risk.services import hooks
from risk.services.common import actor_id
from risk.services.trips import dry_run_trips_release
from risk.validators import breaker_definition_validate


class BreakerFields(StrictSerializer):
    """A breaker's definition as the API and snapshots give it (numbers or strings)."""

    name = serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        max_length=100,
        error_messages={"invalid": "Letters, digits, '_', '-' and '.', starting with a letter or digit."},
    )
    description = serializers.CharField(allow_blank=True, required=False, max_length=2000)
    condition_type = serializers.ChoiceField(choices=ConditionType.choices)
    threshold = PositiveDecimalField(**MONEY, positive_message="threshold must be positive.")
    action = serializers.ChoiceField(choices=BreakerAction.choices)
    symbols = serializers.JSONField(required=False, allow_null=True)
    exchanges = serializers.JSONField(required=False, allow_null=True)
    enabled = serializers.BooleanField(required=False)
    additional_params = serializers.JSONField(required=False, allow_null=True)
    cooldown_seconds = serializers.IntegerField(required=False, min_value=0, max_value=7 * 86400)


def breaker_fields_parse(data, *, partial: bool) -> dict:
    """A definition given as JSON (a request body, a snapshot, the admin's form) as
    keyword values for `breaker_create` / `breaker_update`; InvalidInput otherwise."""
    if not isinstance(data, dict):
        raise InvalidInput({"non_field_errors": ["Must be an object."]})
    serializer = BreakerFields(data=data, partial=partial)
    if not serializer.is_valid():
        raise InvalidInput(serializer.errors)
    return dict(serializer.validated_data)


def _definition_check(breaker: CircuitBreaker) -> None:
    try:
        scopes = breaker_definition_validate(
            condition_type=breaker.condition_type,
            threshold=breaker.threshold,
            additional_params=breaker.additional_params,
            symbols=breaker.symbols,
            exchanges=breaker.exchanges,
            action=breaker.action,
        )
    except DjangoValidationError as exc:
        raise InvalidInput(exc.message_dict) from exc
    breaker.symbols, breaker.exchanges = scopes["symbols"], scopes["exchanges"]
    if breaker.additional_params is None:
        breaker.additional_params = {}


def _save(breaker: CircuitBreaker) -> None:
    if CircuitBreaker.objects.filter(name=breaker.name).exclude(pk=breaker.pk).exists():
        raise Conflict(f"A circuit breaker named {breaker.name!r} already exists.")
    try:
        with transaction.atomic():
            breaker.save()
    except IntegrityError as exc:
        raise Conflict(f"A circuit breaker named {breaker.name!r} already exists.") from exc


@transaction.atomic
def breaker_create(
    *,
    actor,
    name: str,
    condition_type: str,
    threshold: Decimal,
    action: str,
    description: str = "",
    symbols: list | None = None,
    exchanges: list | None = None,
    enabled: bool = True,
    additional_params: dict | None = None,
    cooldown_seconds: int | None = None,
) -> CircuitBreaker:
    """Values are as `breaker_fields_parse` returns them (the definition's checks per
    condition type run here); `cooldown_seconds` None keeps the model's default."""
    breaker = CircuitBreaker(
        name=name,
        condition_type=condition_type,
        threshold=threshold,
        action=action,
        description=description,
        symbols=symbols,
        exchanges=exchanges,
        enabled=enabled,
        additional_params=additional_params,
    )
    if cooldown_seconds is not None:
        breaker.cooldown_seconds = cooldown_seconds
    _definition_check(breaker)
    history_actor_set(breaker, actor_id(actor))
    _save(breaker)
    hooks.breakers_changed()
    return breaker


@transaction.atomic
def breaker_update(*, actor, breaker: CircuitBreaker, **changes) -> CircuitBreaker:
    """Partial update with the keyword values of `breaker_create` (as
    `breaker_fields_parse(partial=True)` returns them); a change of condition, threshold
    or scope re-validates the whole definition (additional_params must suit the
    resulting condition and action)."""
    unknown = set(changes) - set(BreakerFields().fields)
    if unknown:
        raise TypeError(f"breaker_update() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    breaker = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
    was_enabled = breaker.enabled
    for key, value in changes.items():
        setattr(breaker, key, value)
    _definition_check(breaker)
    history_actor_set(breaker, actor_id(actor))
    _save(breaker)
    hooks.breakers_changed()
    if breaker.enabled and not was_enabled:
        dry_run_trips_release(actor=actor, reason="breaker enabled again", breaker=breaker)
    return breaker


@transaction.atomic
def breaker_set_enabled(*, actor, breaker: CircuitBreaker, enabled: bool) -> CircuitBreaker:
    breaker = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
    if breaker.enabled != enabled:
        breaker.enabled = enabled
        history_actor_set(breaker, actor_id(actor))
        breaker.save()
        hooks.breakers_changed()
        if enabled:
            dry_run_trips_release(actor=actor, reason="breaker enabled again", breaker=breaker)
    return breaker


@transaction.atomic
def breaker_delete(*, actor, breaker: CircuitBreaker) -> None:
    """Delete the breaker; its trips stay as history, their latches released."""
    BreakerTrip.objects.filter(breaker=breaker, released_at__isnull=True).update(
        released_at=timezone.now(), released_by_id=actor_id(actor), release_reason="breaker deleted"
    )
    history_actor_set(breaker, actor_id(actor))
    breaker.delete()
    hooks.breakers_changed()
