"""The notifications app's vocabulary: endpoint kinds, delivery statuses and events,
and the event types an endpoint subscribes to."""

from django.db import models

from risk.constants import AlertType, LimitType


class EndpointKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "E-mail"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered (every attempt failed)"
    REFUSED = "refused", "Refused (address not allowed)"
    SKIPPED = "skipped", "Skipped (endpoint deleted or disabled)"


class DeliveryEvent(models.TextChoices):
    """Why a delivery was made: an alert raised, an open alert updated in place (a
    breaker action's or the kill switch's outcome), a critical alert escalated to the
    officers, or the endpoint's test."""

    RAISED = "alert.raised", "Alert raised"
    UPDATED = "alert.updated", "Alert updated"
    ESCALATED = "alert.escalated", "Alert escalated"
    TEST = "test", "Test"


# What an endpoint subscribes to: an alert type, `risk_limit` for every limit alert
# (ETRMS's alert `type`), or `escalation` for critical alerts left unacknowledged
# (officers' endpoints only receive those). No event types means every one.
RISK_LIMIT = "risk_limit"
ESCALATION = "escalation"
EVENT_TYPES = (
    RISK_LIMIT,
    *(AlertType.warning(limit_type) for limit_type in LimitType.values),
    *(AlertType.exceeded(limit_type) for limit_type in LimitType.values),
    AlertType.CIRCUIT_BREAKER,
    AlertType.TRADING_STATE,
    AlertType.KILL_SWITCH,
    AlertType.LADDER_STEP,
    AlertType.DATA_STALE,
    AlertType.PRICE_ALERT,
    ESCALATION,
)
