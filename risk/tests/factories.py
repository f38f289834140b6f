"""factory_boy factories for risk rows (users come from the root conftest's make_user)."""

from decimal import Decimal

import factory

from risk.constants import AlertSeverity
from risk.models import CircuitBreaker, RiskAlert, RiskLimit


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
