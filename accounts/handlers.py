"""Job handlers of the accounts app (registered with the jobs registry at startup)."""

from rest_framework import serializers

from accounts.exchanges import is_known_exchange
from accounts.fields import ExchangeIdField
from accounts.services.sync import portfolio_sync, portfolios_sync_all
from jobs.registry import job_handler


def _exchange(value: str) -> str:
    value = value.strip().lower()
    if not is_known_exchange(value):
        raise serializers.ValidationError(f"Unknown exchange {value!r}.")
    return value


class SyncPortfolioArgs(serializers.Serializer):
    exchange = ExchangeIdField(
        max_length=32,
        required=False,
        help_text="The exchange whose account to sync, e.g. 'paper'; default: every enabled account of the user.",
    )
    user_id = serializers.UUIDField(required=False, help_text="Whose account (risk officers); default: the caller.")

    def validate_exchange(self, value):
        return _exchange(value)


class SyncAllPortfoliosArgs(serializers.Serializer):
    exchanges = serializers.ListField(
        child=ExchangeIdField(max_length=32),
        required=False,
        allow_empty=True,
        help_text="Only accounts on these exchanges; default: every enabled account.",
    )

    def validate_exchanges(self, values):
        return [_exchange(value) for value in values]


@job_handler(
    name="sync_portfolio",
    description="Sync the balance and positions of a user's account on one exchange, or of all their accounts.",
    args=SyncPortfolioArgs,
    default_priority="high",
)
def sync_portfolio(job, *, exchange=None, user_id=None) -> dict:
    return portfolio_sync(user_id=user_id or job.user_id, exchange=exchange)


@job_handler(
    name="sync_all_portfolios",
    description="Sync the balances and positions of every enabled account (monitoring runs it periodically).",
    args=SyncAllPortfoliosArgs,
    default_priority="high",
    officer_only=True,
)
def sync_all_portfolios(job, *, exchanges=None) -> dict:
    return portfolios_sync_all(exchanges=exchanges or None)
