"""Admin: users, exchange accounts (credentials write-only), and read-only snapshots."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from accounts.exchanges import Credentials
from accounts.models import (
    AccountDay,
    Balance,
    ClosedTrade,
    ExchangeAccount,
    MonitoringState,
    PaperFill,
    PaperMarket,
    PaperOrder,
    PaperPosition,
    PaperWallet,
    Position,
    User,
)
from accounts.services.balances import balance_peak_reset
from accounts.services.credentials import exchange_account_credentials_set
from accounts.services.exchange_accounts import exchange_account_create, exchange_validate
from etrms.admin_tools import ReadOnlyAdminMixin, run_each

admin.site.register(User, UserAdmin)

_SECRET_HELP = "Write-only: never shown again once saved. Leave empty to keep the stored value."  # noqa: S105


def _secret_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_SECRET_HELP,
    )


class ExchangeAccountForm(forms.ModelForm):
    api_key = _secret_field("API key")
    secret = _secret_field("API secret")
    password = _secret_field("Passphrase (okx and others)")
    uid = _secret_field("UID (venues that need one)")
    wallet_address = _secret_field("Wallet address (hyperliquid)")
    private_key = _secret_field("Private key (hyperliquid)")
    clear_credentials = forms.BooleanField(
        required=False, help_text="Remove every stored credential of this account (fields above are ignored)."
    )

    class Meta:
        model = ExchangeAccount
        fields = ["user", "exchange", "label", "testnet", "enabled"]

    def clean_exchange(self):
        try:
            return exchange_validate(self.cleaned_data["exchange"])
        except Exception as exc:
            raise forms.ValidationError(f"Unknown exchange {self.cleaned_data['exchange']!r}.") from exc

    def credentials(self) -> Credentials:
        return Credentials(**{name: self.cleaned_data.get(name) or "" for name in Credentials.FIELDS})


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Snapshots and venue books: written by sync and the paper engine only."""


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    form = ExchangeAccountForm
    list_display = [
        "id",
        "user",
        "exchange",
        "label",
        "enabled",
        "testnet",
        "credentials_stored",
        "last_synced_at",
        "last_sync_failed",
    ]
    list_filter = ["exchange", "enabled", "testnet", "last_sync_failed"]
    search_fields = ["user__username", "label", "exchange"]
    list_select_related = ["user"]
    readonly_fields = [
        "credentials_stored",
        "last_synced_at",
        "last_sync_attempt_at",
        "last_sync_failed",
        "last_sync_error",
    ]
    fieldsets = [
        (None, {"fields": ["user", "exchange", "label", "testnet", "enabled"]}),
        (
            "Credentials (write-only)",
            {
                "fields": [
                    "credentials_stored",
                    "api_key",
                    "secret",
                    "password",
                    "uid",
                    "wallet_address",
                    "private_key",
                    "clear_credentials",
                ]
            },
        ),
        ("Sync", {"fields": ["last_synced_at", "last_sync_attempt_at", "last_sync_failed", "last_sync_error"]}),
    ]

    @admin.display(boolean=True, description="Credentials stored")
    def credentials_stored(self, obj) -> bool:
        return bool(obj and obj.has_credentials)

    def save_model(self, request, obj, form, change):
        credentials = form.credentials()
        if not change:
            account = exchange_account_create(
                user_id=obj.user_id,
                exchange=obj.exchange,
                label=obj.label,
                credentials=credentials or None,
                testnet=obj.testnet,
                enabled=obj.enabled,
            )
            obj.pk = account.pk
            obj.refresh_from_db()
            return
        obj.save()
        if form.cleaned_data.get("clear_credentials"):
            exchange_account_credentials_set(account=obj, credentials=Credentials(), replace=True)
            messages.info(request, "Stored credentials removed.")
        elif credentials:
            exchange_account_credentials_set(account=obj, credentials=credentials)


class OpenFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "balance",
        "equity",
        "available",
        "margin_used",
        "margin_ratio",
        "peak_equity",
        "net_transfers",
        "peak_reset_at",
        "peak_reset_by",
        "updated_at",
    ]
    list_filter = ["account__exchange"]
    search_fields = ["account__user__username", "account__label"]
    list_select_related = ["account", "peak_reset_by"]
    actions = ["reset_drawdown_peak"]

    @admin.action(description="Reset drawdown peak (peak equity from the equity now)")
    def reset_drawdown_peak(self, request, queryset):
        run_each(
            self,
            request,
            queryset.select_related("account"),
            lambda balance: balance_peak_reset(actor=request.user, account=balance.account),
            done="drawdown peak(s) reset",
        )


@admin.register(AccountDay)
class AccountDayAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "date",
        "realized_pnl",
        "transfers",
        "start_equity",
        "last_equity",
        "start_unrealized",
        "last_unrealized",
    ]
    list_filter = ["account__exchange", "date"]
    search_fields = ["account__user__username"]
    list_select_related = ["account"]
    date_hierarchy = "date"


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = [
        "symbol",
        "side",
        "account",
        "size",
        "entry_price",
        "mark_price",
        "notional",
        "unrealized_pnl",
        "realized_pnl",
        "leverage",
        "opened_at",
        "closed_at",
    ]
    list_filter = [OpenFilter, "account__exchange", "side", "symbol"]
    search_fields = ["symbol", "account__user__username"]
    list_select_related = ["account"]
    date_hierarchy = "opened_at"


@admin.register(ClosedTrade)
class ClosedTradeAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "side", "account", "size", "entry_price", "exit_price", "realized_pnl", "closed_at"]
    list_filter = ["account__exchange", "side", "symbol"]
    search_fields = ["symbol", "account__user__username"]
    list_select_related = ["account"]
    date_hierarchy = "closed_at"


@admin.register(MonitoringState)
class MonitoringStateAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "exchanges", "symbols", "interval_seconds", "last_sync_at", "last_error_at"]


class PaperMarketForm(forms.ModelForm):
    class Meta:
        model = PaperMarket
        fields = ["symbol", "base", "quote", "base_price", "volatility", "tick_size", "step_size", "price_override"]

    def clean(self):
        data = super().clean()
        symbol, quote = (data.get("symbol") or "").upper(), (data.get("quote") or "").upper()
        if symbol and quote and (not symbol.endswith(quote) or symbol == quote):
            raise forms.ValidationError(f"{symbol} is not a {quote}-quoted symbol.")
        for name in ("base_price", "tick_size", "step_size", "price_override"):
            if data.get(name) is not None and data[name] <= 0:
                self.add_error(name, "Must be positive.")
        return data


@admin.register(PaperMarket)
class PaperMarketAdmin(admin.ModelAdmin):
    """Officers add paper markets and pin a paper price to rehearse a breaker."""

    form = PaperMarketForm
    list_display = ["symbol", "base_price", "volatility", "price_override", "tick_size", "step_size"]
    search_fields = ["symbol"]

    def save_model(self, request, obj, form, change):
        from accounts.services.paper import paper_market_upsert, paper_price_set

        paper_market_upsert(
            symbol=obj.symbol,
            base_price=obj.base_price,
            volatility=obj.volatility,
            tick_size=obj.tick_size,
            step_size=obj.step_size,
            quote=obj.quote.upper(),
        )
        row = paper_price_set(symbol=obj.symbol, price=obj.price_override)
        obj.pk = row.pk
        obj.refresh_from_db()


@admin.register(PaperWallet)
class PaperWalletAdmin(ReadOnlyAdmin):
    list_display = ["account", "currency", "balance", "default_leverage", "hedge_mode", "updated_at"]
    list_select_related = ["account"]


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdmin):
    list_display = ["account", "symbol", "side", "size", "entry_price", "leverage", "opened_at"]
    list_filter = ["symbol", "side"]
    list_select_related = ["account"]


@admin.register(PaperOrder)
class PaperOrderAdmin(ReadOnlyAdmin):
    list_display = ["account", "client_order_id", "symbol", "side", "type", "amount", "filled", "status", "created_at"]
    list_filter = ["status", "type", "symbol"]
    search_fields = ["client_order_id", "symbol"]
    list_select_related = ["account"]


@admin.register(PaperFill)
class PaperFillAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "symbol",
        "side",
        "position_side",
        "price",
        "amount",
        "fee",
        "realized_pnl",
        "created_at",
    ]
    list_filter = ["symbol", "side"]
    list_select_related = ["account"]
