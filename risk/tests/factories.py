"""factory_boy factories for risk rows (users come from the root conftest's make_user)."""

import uuid
from decimal import Decimal

import factory

from risk.constants import AlertSeverity
from risk.models import BreakerTrip, CircuitBreaker, RiskAlert, RiskLimit
from risk.services.snapshots import ConfigView


class RiskLimitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiskLimit

    symbol = "BTCUSDT"
    limit_type = "position_size"
    threshold_value = Decimal("10000")
    warning_value = Decimal("8000")
    enabled = True
    set_by = factory.SelfAttribute("user")


class RiskAlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiskAlert

    alert_type = "position_size_exceeded"
    severity = AlertSeverity.HIGH
    message = "Position size exceeded threshold"
    metadata = factory.LazyFunction(lambda: {"symbol": "BTCUSDT", "current_value": "11000.00", "threshold": "10000.00"})
    dedup_key = factory.Sequence(lambda n: f"test:{n}")


class CircuitBreakerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CircuitBreaker

    name = factory.Sequence(lambda n: f"breaker-{n}")
    description = "test breaker"
    condition_type = "max_position_size"
    threshold = Decimal("50000")
    action = "close_position"
    additional_params = factory.LazyFunction(dict)


def breaker_trip(breaker: CircuitBreaker, user, latch_key: str, **fields) -> BreakerTrip:
    """A trip of `breaker` on the user's paper BTCUSDT, latched unless `fields` say otherwise."""
    return BreakerTrip.objects.create(
        breaker=breaker,
        breaker_name=breaker.name,
        user=user,
        latch_key=latch_key,
        exchange="paper",
        symbol="BTCUSDT",
        condition_type=breaker.condition_type,
        threshold=breaker.threshold,
        action=breaker.action,
        client_order_id=uuid.uuid4().hex[:32],
        **fields,
    )


def breakers_only_config(breakers: tuple, *, max_price_age_seconds: int = 10**9) -> ConfigView:
    """The configuration view of pure breaker tests: `breakers` enabled, no desk caps,
    dry run (by default marks never go stale)."""
    return ConfigView(
        version=0,
        max_total_exposure=None,
        max_leverage=None,
        max_drawdown_pct=None,
        daily_loss_limit=None,
        max_margin_ratio=None,
        dry_run=True,
        alert_cooldown_seconds=0,
        max_price_age_seconds=max_price_age_seconds,
        symbol_caps={},
        exchange_caps={},
        breakers=breakers,
    )
