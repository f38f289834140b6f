"""Users, exchange accounts, and the balance and position snapshots sync keeps.

Money and quantities are Decimal (quote currency; USD stablecoins 1:1), datetimes UTC.
Writes go through `accounts.services.*`; these models hold fields, constraints and small
derived properties only.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from etrms.formatting import decimal_human


def money(**kwargs) -> models.DecimalField:
    kwargs.setdefault("default", Decimal(0))
    return models.DecimalField(max_digits=28, decimal_places=10, **kwargs)


def optional_money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=28, decimal_places=10, null=True, blank=True, **kwargs)


class User(AbstractUser):
    """A desk member. Ids are UUIDs, as the API documents show `user_id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class Side(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


class ExchangeAccount(models.Model):
    """A user's account on one exchange (a ccxt id, or `paper`): one per user and exchange.

    `credentials_encrypted` is a Fernet token (MultiFernet over FIELD_ENCRYPTION_KEYS) of
    a JSON object of ccxt credential names; only `accounts.services.credentials` reads or
    writes it, and nothing ever shows it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exchange_accounts")
    exchange = models.CharField(max_length=32, db_index=True)
    label = models.CharField(max_length=100, blank=True)
    credentials_encrypted = models.TextField(blank=True, default="", editable=False)
    testnet = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Sync state: a failed last sync makes every position of the account stale (SPEC §5).
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_attempt_at = models.DateTimeField(null=True, blank=True)
    last_sync_failed = models.BooleanField(default=False)
    last_sync_error = models.TextField(blank=True, default="")
    # {symbol: unix ms of the newest fill already counted into realized PnL}.
    fill_cursors = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "exchange"], name="exchange_account_one_per_user")]
        ordering = ["exchange", "id"]

    def __str__(self) -> str:
        return f"{self.exchange} account {self.label or self.pk}"

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_encrypted)


class Balance(models.Model):
    """The account's latest balance snapshot (one row per account, updated by sync).

    balance: wallet balance (unrealized PnL excluded); equity: balance + unrealized;
    margin_ratio: maintenance margin / equity (None when unknown); peak_equity: the
    highest equity seen since the account was first synced (or an officer's reset),
    moved by transfers: a deposit raises it and a withdrawal lowers it by the amount, so
    a transfer is never drawdown. net_transfers: net deposits since the first sync
    (deposit positive), as sync detects them (`accounts.services.sync.ledger`).
    """

    account = models.OneToOneField(ExchangeAccount, on_delete=models.CASCADE, related_name="balance")
    currency = models.CharField(max_length=8, default="USD")
    balance = money()
    equity = money()
    available = money()
    margin_used = money()
    unrealized_pnl = money()
    maintenance_margin = optional_money()
    margin_ratio = optional_money()
    peak_equity = money()
    peak_equity_at = models.DateTimeField(null=True, blank=True)
    net_transfers = money()
    # The last officer's reset of the peak (audit: who and when; the log has the values).
    peak_reset_at = models.DateTimeField(null=True, blank=True)
    peak_reset_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Balance of {self.account}"


class AccountDay(models.Model):
    """Per account and UTC day: what `daily_loss` (SPEC §4) needs.

    `start_*` are the values at 00:00 UTC (the last values seen before midnight, or the
    first sync of the day when there were none); `last_*` the latest. realized_pnl is the
    sum of the day's fills (the venue's realized PnL minus fees) plus funding, counted by
    sync with the fills; transfers is the day's net deposits (deposit positive), the
    wallet change fills, fees and funding do not explain. Transfers never move
    daily_pnl = realized + unrealized now - unrealized at 00:00.
    """

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="days")
    date = models.DateField()
    start_balance = money()
    start_equity = money()
    start_unrealized = money()
    last_balance = money()
    last_equity = money()
    last_unrealized = money()
    realized_pnl = money()
    transfers = money()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "date"], name="account_day_unique")]
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.account} on {self.date}"

    @property
    def daily_pnl(self) -> Decimal:
        return self.realized_pnl + self.last_unrealized - self.start_unrealized


class Position(models.Model):
    """A position as sync and the feed last saw it; `closed_at` is null while open.

    size > 0 in base units; notional = |size x mark|; unrealized_pnl on the mark;
    realized_pnl since opening, net of fees and funding; peak_pnl = max(realized +
    unrealized) since opening; best_price = best mark since opening (max for longs,
    min for shorts); peak_entry_notional = max |size x entry| since opening (the
    `max_drawdown` denominator: reducing the size never lowers it). A flip to the other
    side, or a close and reopen between two syncs, closes this row and opens a new one.
    """

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5, choices=Side.choices)
    hedged = models.BooleanField(default=False)
    size = money()
    entry_price = money()
    mark_price = money()
    mark_updated_at = models.DateTimeField()
    notional = money()
    unrealized_pnl = money()
    realized_pnl = money()
    leverage = optional_money()
    liquidation_price = optional_money()
    margin_ratio = optional_money()
    maintenance_margin = optional_money()
    peak_pnl = money()
    best_price = money()
    peak_entry_notional = money()
    exit_price = optional_money()
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "symbol", "side"],
                condition=Q(closed_at__isnull=True),
                name="position_one_open_per_side",
            ),
            models.CheckConstraint(condition=Q(size__gte=0), name="position_size_not_negative"),
        ]
        indexes = [models.Index(fields=["symbol", "closed_at"], name="position_symbol_open")]
        ordering = ["symbol", "side"]

    def __str__(self) -> str:
        return f"{self.side} {decimal_human(self.size)} {self.symbol} on {self.account.exchange}"

    @property
    def direction(self) -> int:
        return 1 if self.side == Side.LONG else -1

    @property
    def entry_notional(self) -> Decimal:
        return abs(self.size * self.entry_price)


class ClosedTrade(models.Model):
    """One row per closed position: its net result (for `consecutive_losses`)."""

    position = models.OneToOneField(Position, on_delete=models.CASCADE, related_name="closed_trade")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="closed_trades")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5, choices=Side.choices)
    size = money()  # the size when last seen open
    entry_price = money()
    exit_price = optional_money()
    realized_pnl = money()  # net: fees and funding included
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "symbol", "-closed_at"], name="closed_trade_recent")]
        ordering = ["-closed_at"]

    def __str__(self) -> str:
        return f"{self.side} {self.symbol} closed {self.closed_at:%Y-%m-%d %H:%M} ({decimal_human(self.realized_pnl)})"


class MonitoringState(models.Model):
    """The desk's monitoring switch (a singleton, pk 1): SPEC §6 monitor start/stop."""

    running = models.BooleanField(default=False)
    exchanges = models.JSONField(default=list, blank=True)
    symbols = models.JSONField(default=list, blank=True)  # [] = every symbol with a position
    interval_seconds = models.PositiveIntegerField(default=30)
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "monitoring state"
        verbose_name_plural = "monitoring state"

    def __str__(self) -> str:
        return "Monitoring running" if self.running else "Monitoring stopped"


# --- the paper exchange's own books (what a venue would hold) ---------------------------
class PaperMarket(models.Model):
    """A paper market beyond the built-in ones, or a built-in one's settings.

    `price_override` pins the price (tests, demos, officers rehearsing a breaker); null
    lets the seeded random walk run.
    """

    symbol = models.CharField(max_length=40, unique=True)
    base = models.CharField(max_length=20)
    quote = models.CharField(max_length=20, default="USDT")
    base_price = models.DecimalField(max_digits=28, decimal_places=10)
    volatility = models.FloatField(default=0.6, help_text="Annualised, 0.6 = 60 %.")
    tick_size = models.DecimalField(max_digits=28, decimal_places=10, default=Decimal("0.01"))
    step_size = models.DecimalField(max_digits=28, decimal_places=10, default=Decimal("0.001"))
    maintenance_margin_rate = models.DecimalField(max_digits=12, decimal_places=8, default=Decimal("0.005"))
    price_override = optional_money()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class PaperWallet(models.Model):
    account = models.OneToOneField(ExchangeAccount, on_delete=models.CASCADE, related_name="paper_wallet")
    currency = models.CharField(max_length=8, default="USDT")
    balance = money()
    default_leverage = models.PositiveIntegerField(default=10)
    hedge_mode = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Paper wallet of {self.account}"


class PaperPosition(models.Model):
    """An open paper position (the row is deleted when its size reaches zero)."""

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="paper_positions")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5, choices=Side.choices)
    size = money()
    entry_price = money()
    leverage = models.PositiveIntegerField(default=10)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol", "side"], name="paper_position_unique"),
            models.CheckConstraint(condition=Q(size__gt=0), name="paper_position_size_positive"),
        ]
        ordering = ["symbol", "side"]

    def __str__(self) -> str:
        return f"paper {self.side} {decimal_human(self.size)} {self.symbol}"


class PaperOrder(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"
        CANCELED = "canceled"
        REJECTED = "rejected"

    class Type(models.TextChoices):
        MARKET = "market"
        LIMIT = "limit"

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="paper_orders")
    client_order_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4)  # buy | sell
    type = models.CharField(max_length=8, choices=Type.choices)
    position_side = models.CharField(max_length=5, choices=Side.choices, blank=True, default="")
    reduce_only = models.BooleanField(default=False)
    amount = money()
    price = optional_money()
    status = models.CharField(max_length=8, choices=Status.choices, db_index=True)
    filled = money()
    average_price = optional_money()
    fee = money()
    reject_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="paper_order_client_id_unique")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"paper {self.type} {self.side} {decimal_human(self.amount)} {self.symbol} ({self.status})"


class PaperFill(models.Model):
    order = models.ForeignKey(PaperOrder, on_delete=models.CASCADE, related_name="fills")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="paper_fills")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4)
    position_side = models.CharField(max_length=5, choices=Side.choices)
    price = money()
    amount = money()
    fee = money()
    realized_pnl = money()  # gross of the fee, as Binance reports `realizedPnl`
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"paper fill {self.side} {decimal_human(self.amount)} {self.symbol} @ {decimal_human(self.price)}"
