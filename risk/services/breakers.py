"""Writes on circuit breaker definitions (SPEC §5). Trips and actions: `risk.services.trips`."""

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


def _fields_validate(data, *, partial: bool, field: str | None = None) -> dict:
    if not isinstance(data, dict):
        raise InvalidInput({field or "non_field_errors": ["Must be an object."]})
    serializer = BreakerFields(data=data, partial=partial)
    if not serializer.is_valid():
        raise InvalidInput({field: serializer.errors} if field else serializer.errors)
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
def breaker_create(*, actor, data: dict, field: str | None = None) -> CircuitBreaker:
    values = _fields_validate(data, partial=False, field=field)
    breaker = CircuitBreaker(**values)
    _definition_check(breaker)
    history_actor_set(breaker, actor_id(actor))
    _save(breaker)
    hooks.breakers_changed()
    return breaker


@transaction.atomic
def breaker_update(*, actor, breaker: CircuitBreaker, updates: dict, field: str | None = "updates") -> CircuitBreaker:
    """Partial update; a change of condition, threshold or scope re-validates the whole
    definition (additional_params must suit the resulting condition and action)."""
    values = _fields_validate(updates, partial=True, field=field)
    breaker = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
    was_enabled = breaker.enabled
    for key, value in values.items():
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
