"""Property: on random desks (users, accounts, balances, day starts, positions, limits
and desk caps) the evaluation service agrees, Decimal for Decimal, with a plain
reference computation written straight from SPEC §4 and §5."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AccountDay, Balance, ExchangeAccount, Position
from etrms.formatting import decimal_str
from risk.api.outputs import evaluation_out
from risk.models import GlobalConfig, RiskLimit
from risk.services.evaluation import evaluation_run
from risk.services.snapshots import config_cache_clear

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_breakers")]

ZERO, HUNDRED = Decimal(0), Decimal(100)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
EXCHANGES = ["paper", "binanceusdm"]
LIMIT_TYPES = ["position_size", "total_exposure", "daily_loss", "margin_ratio", "leverage", "drawdown"]

# Values stay within 15 significant digits, which SQLite keeps exactly (PostgreSQL keeps all).
prices = st.decimals(min_value="0.01", max_value="99999.99", places=2)
sizes = st.decimals(min_value="0.01", max_value="999.99", places=2)
balances = st.decimals(min_value="-2000", max_value="500000", places=2)
small = st.decimals(min_value="0.01", max_value="50000", places=2)
optional_cap = st.none() | st.decimals(min_value="0.5", max_value="2000000", places=2)


@st.composite
def position_data(draw):
    return {
        "symbol": draw(st.sampled_from(SYMBOLS)),
        "side": draw(st.sampled_from(["long", "short"])),
        "size": draw(sizes),
        "entry": draw(prices),
        "mark": draw(prices),
        "leverage": draw(st.none() | st.integers(1, 50).map(Decimal)),
    }


@st.composite
def account_data(draw, exchange, min_positions=0):
    return {
        "exchange": exchange,
        "has_balance": draw(st.sampled_from([True, True, True, False])),
        "balance": draw(balances),
        "peak_equity": draw(balances),
        "maintenance": draw(st.none() | small),
        "day_realized": draw(st.decimals(min_value="-50000", max_value="50000", places=2)),
        "net_transfers": draw(st.decimals(min_value="-50000", max_value="50000", places=2)),
        "start_unrealized": draw(st.decimals(min_value="-5000", max_value="5000", places=2)),
        "today_row": draw(st.booleans()),
        "positions": draw(st.lists(position_data(), max_size=4, unique_by=lambda p: (p["symbol"], p["side"]))),
    }


@st.composite
def user_data(draw):
    exchanges = draw(st.lists(st.sampled_from(EXCHANGES), unique=True, max_size=2))
    return {"accounts": [draw(account_data(exchange)) for exchange in exchanges]}


# u = value / threshold = 1 / ratio: the boundaries of the levels (1, 0.8, 0.5) and anything between
ratios = st.one_of(
    st.sampled_from([Decimal(1), Decimal("1.25"), Decimal("1.3"), Decimal(2)]),
    st.decimals(min_value="0.3", max_value="2.5", places=2),
)


@st.composite
def limit_data(draw):
    """A limit whose threshold is a ratio of the metric it will meet (set in `desks`),
    so thresholds land below, around and above the values."""
    limit_type = draw(st.sampled_from(LIMIT_TYPES))
    warning = draw(st.none() | st.sampled_from([Decimal("0.5"), Decimal("0.8")]) | st.decimals("0.3", "0.99", places=2))
    symbol = draw(st.none() | st.sampled_from(SYMBOLS)) if limit_type == "position_size" else None
    return {"limit_type": limit_type, "ratio": draw(ratios), "warning_ratio": warning, "symbol": symbol}


def _scaled(base, ratio, *, ceiling=None):
    """base x ratio, exact (base to 4 places): thresholds fall exactly on values too."""
    value = abs(Decimal(base)).quantize(Decimal("0.0001")) * ratio
    value = max(value, Decimal("0.01"))
    return min(value, ceiling) if ceiling is not None else value


@st.composite
def desks(draw):
    first = {"accounts": [draw(account_data("paper", min_positions=1))]}
    if draw(st.booleans()):
        first["accounts"].append(draw(account_data("binanceusdm")))
    users = [first, *draw(st.lists(user_data(), max_size=2))]
    metrics = _metrics(first)
    limits = draw(
        st.lists(limit_data(), min_size=1, max_size=3, unique_by=lambda item: (item["limit_type"], item["symbol"]))
    )
    for lim in limits:
        base = {
            "position_size": metrics["net"].get(lim["symbol"], metrics["exposure"])
            if lim["symbol"]
            else metrics["max_net"],
            "total_exposure": metrics["exposure"],
            "daily_loss": max(metrics["daily_loss"], Decimal(1)),
            "margin_ratio": metrics["margin"] or Decimal("0.1"),
            "leverage": metrics["leverage"] or Decimal(1),
            "drawdown": Decimal(10),
        }[lim["limit_type"]]
        ceiling = {"margin_ratio": Decimal(1), "drawdown": HUNDRED}.get(lim["limit_type"])
        lim["threshold"] = _scaled(base, lim["ratio"], ceiling=ceiling)
        warning = lim["warning_ratio"]
        # to 6 places: threshold x ratio could reach 16 significant digits, one more than SQLite keeps
        lim["warning"] = (lim["threshold"] * warning).quantize(Decimal("0.000001")) if warning is not None else None
        if lim["warning"] is not None and not ZERO < lim["warning"] < lim["threshold"]:
            lim["warning"] = None
    desk_metrics = _desk_metrics(users)

    with_caps = draw(st.booleans())  # half the desks have no caps: the user's limits alone set the level

    def cap(base, ceiling=None):
        if not with_caps:
            return None
        return draw(
            st.one_of(st.none(), st.none(), st.none(), ratios.map(lambda r: _scaled(base or 1, r, ceiling=ceiling)))
        )

    caps = {
        "max_total_exposure": cap(desk_metrics["exposure"]),
        "max_leverage": cap(desk_metrics["leverage"] or Decimal(1)),
        "daily_loss_limit": cap(max(desk_metrics["daily_loss"], Decimal(1))),
        "max_drawdown_pct": cap(metrics["drawdown"] or Decimal(5), HUNDRED),
        "max_margin_ratio": cap(metrics["margin"] or Decimal("0.1"), Decimal(1)),
    }
    symbol_caps = (
        {}
        if not with_caps
        else {
            symbol: (
                cap(desk_metrics["net"].get(symbol, Decimal(1))),
                draw(st.none() | st.integers(1, 40).map(Decimal)),
            )
            for symbol in draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=3))
        }
    )
    exchange_caps = (
        {}
        if not with_caps
        else {
            exchange: cap(desk_metrics["exchange"].get(exchange, Decimal(1)))
            for exchange in draw(st.lists(st.sampled_from(EXCHANGES), unique=True, max_size=2))
        }
    )
    peaks = draw(st.lists(balances, min_size=4, max_size=4))
    return {
        "users": users,
        "limits": limits,
        "caps": caps,
        "symbol_caps": symbol_caps,
        "exchange_caps": exchange_caps,
        "peaks": peaks,
    }


def _metrics(user) -> dict:
    positions = [p for a in user["accounts"] for p in a["positions"]]
    net = {}
    for p in positions:
        net[p["symbol"]] = net.get(p["symbol"], ZERO) + _signed(p)
    funded = [a for a in user["accounts"] if a["has_balance"]]
    equity = sum((_account_figures(a)[0] for a in funded), ZERO)
    exposure = sum((abs(_signed(p)) for p in positions), ZERO)
    margins = [
        a["maintenance"] / _account_figures(a)[0]
        for a in funded
        if a["maintenance"] is not None and _account_figures(a)[0] > 0
    ]
    return {
        "net": {symbol: abs(value) for symbol, value in net.items()},
        "max_net": max((abs(value) for value in net.values()), default=Decimal(1)),
        "exposure": exposure,
        "daily_loss": max(ZERO, -sum((_account_figures(a)[1] for a in funded), ZERO)),
        "margin": max(margins, default=None),
        "leverage": exposure / equity if equity > 0 else None,
        "drawdown": max(
            (_dd(max(a["peak_equity"], _account_figures(a)[0]), _account_figures(a)[0]) for a in funded),
            default=ZERO,
        ),
    }


def _desk_metrics(users) -> dict:
    accounts = [a for user in users for a in user["accounts"]]
    merged = _metrics({"accounts": accounts})
    merged["exchange"] = {}
    for a in accounts:
        for p in a["positions"]:
            merged["exchange"][a["exchange"]] = merged["exchange"].get(a["exchange"], ZERO) + abs(_signed(p))
    merged["net"] = {}
    for a in accounts:
        for p in a["positions"]:
            merged["net"][p["symbol"]] = merged["net"].get(p["symbol"], ZERO) + _signed(p)
    merged["net"] = {symbol: abs(value) for symbol, value in merged["net"].items()}
    return merged


# --- writing the desk -------------------------------------------------------------------------
def _write(desk) -> tuple[list, dict]:
    from django.utils import timezone

    from risk.models import ExchangeConfig, SymbolConfig

    now = timezone.now()
    users = []
    for data in desk["users"]:
        user = get_user_model().objects.create(username=f"p-{uuid.uuid4().hex[:10]}")
        users.append(user)
        for acct in data["accounts"]:
            account = ExchangeAccount.objects.create(user=user, exchange=acct["exchange"])
            acct["id"] = account.pk
            if acct["has_balance"]:
                Balance.objects.create(
                    account=account,
                    balance=acct["balance"],
                    unrealized_pnl=acct["start_unrealized"],
                    maintenance_margin=acct["maintenance"],
                    peak_equity=acct["peak_equity"],
                    net_transfers=acct["net_transfers"],
                    updated_at=now,
                )
                if acct["today_row"]:
                    AccountDay.objects.create(
                        account=account,
                        date=datetime.now(UTC).date(),
                        realized_pnl=acct["day_realized"],
                        start_unrealized=acct["start_unrealized"],
                        updated_at=now,
                    )
            for p in acct["positions"]:
                direction = 1 if p["side"] == "long" else -1
                Position.objects.create(
                    account=account,
                    symbol=p["symbol"],
                    side=p["side"],
                    size=p["size"],
                    entry_price=p["entry"],
                    mark_price=p["mark"],
                    mark_updated_at=now,
                    notional=abs(p["size"] * p["mark"]),
                    unrealized_pnl=(p["mark"] - p["entry"]) * p["size"] * direction,
                    leverage=p["leverage"],
                    best_price=p["mark"],
                    opened_at=now,
                )
    first = users[0]
    limit_ids = {}
    for index, lim in enumerate(desk["limits"]):
        limit = RiskLimit.objects.create(
            user=first,
            limit_type=lim["limit_type"],
            symbol=lim["symbol"],
            threshold_value=lim["threshold"],
            warning_value=lim["warning"],
            set_by=first,
        )
        if lim["limit_type"] == "drawdown":
            accounts = desk["users"][0]["accounts"]
            peaks = {str(a["id"]): str(desk["peaks"][i]) for i, a in enumerate(accounts) if a["has_balance"]}
            RiskLimit.objects.filter(pk=limit.pk).update(equity_peaks=peaks)
            lim["peaks"] = {a["id"]: desk["peaks"][i] for i, a in enumerate(accounts) if a["has_balance"]}
        limit_ids[index] = str(limit.pk)
    GlobalConfig.objects.update_or_create(pk=1, defaults=desk["caps"])
    for symbol, (size_cap, leverage_cap) in desk["symbol_caps"].items():
        SymbolConfig.objects.create(symbol=symbol, max_position_size=size_cap, max_leverage=leverage_cap)
    for exchange, cap in desk["exchange_caps"].items():
        ExchangeConfig.objects.create(exchange=exchange, max_exposure=cap)
    config_cache_clear()
    return users, limit_ids


# --- the reference ------------------------------------------------------------------------------
def _signed(p):
    notional = abs(p["size"] * p["mark"])
    return notional if p["side"] == "long" else -notional


def _upnl(p):
    return (p["mark"] - p["entry"]) * p["size"] * (1 if p["side"] == "long" else -1)


def _dd(peak, equity):
    return (peak - equity) / peak * HUNDRED if peak > 0 else ZERO


def _account_figures(acct):
    """(equity now, daily pnl) of an account with a balance."""
    upnl = sum((_upnl(p) for p in acct["positions"]), ZERO)
    equity = acct["balance"] + upnl
    # SPEC §4: realized since 00:00 from fills (none before the day's first sync) plus
    # unrealized now minus unrealized at 00:00; the wallet balance (transfers) never counts.
    realized = acct["day_realized"] if acct["today_row"] else ZERO
    daily = realized + upnl - acct["start_unrealized"]
    return equity, daily


def _leverage(exposure, equity, has_balance):
    if equity > 0:
        return exposure / equity
    return None if exposure > 0 or has_balance else ZERO


def reference(desk) -> dict:
    """The expected violations, warnings, risk level and metrics of the first user."""
    me = desk["users"][0]
    positions = [p | {"exchange": a["exchange"]} for a in me["accounts"] for p in a["positions"]]
    net = {}
    for p in positions:
        net[p["symbol"]] = net.get(p["symbol"], ZERO) + _signed(p)
    net = {symbol: abs(value) for symbol, value in net.items()}
    exposure = sum((abs(_signed(p)) for p in positions), ZERO)
    funded = [a for a in me["accounts"] if a["has_balance"]]
    equity = sum((_account_figures(a)[0] for a in funded), ZERO)
    daily = sum((_account_figures(a)[1] for a in funded), ZERO)
    margins, undefined_margin = [], False
    for a in funded:
        if a["maintenance"] is None:
            continue
        eq = _account_figures(a)[0]
        if eq > 0:
            margins.append(a["maintenance"] / eq)
        elif a["maintenance"] > 0:
            undefined_margin = True
        else:
            margins.append(ZERO)
    margin = None if undefined_margin else (max(margins) if margins else None)
    drawdown = max(
        (_dd(max(a["peak_equity"], _account_figures(a)[0]), _account_figures(a)[0]) for a in funded), default=ZERO
    )
    leverage = _leverage(exposure, equity, bool(funded))

    statuses = []  # (key, value or None, threshold, warning)
    for index, lim in enumerate(desk["limits"]):
        kind = lim["limit_type"]
        if kind == "position_size":
            for symbol in [lim["symbol"]] if lim["symbol"] else sorted(net):
                statuses.append((("limit", index, symbol), net.get(symbol, ZERO), lim))
            continue
        if kind == "total_exposure":
            value = exposure
        elif kind == "daily_loss":
            value = max(ZERO, -daily)
        elif kind == "margin_ratio":
            value = None if undefined_margin else (margin if margin is not None else ZERO)
        elif kind == "leverage":
            value = leverage
        else:
            value = ZERO
            for a in funded:
                # SPEC §4: transfers are never drawdown: a deposit raises the peak by the
                # amount, a withdrawal lowers it (stored peaks are net of transfers).
                eq = _account_figures(a)[0]
                net_of_transfers = eq - a["net_transfers"]
                stored = lim["peaks"].get(a["id"])
                peak = net_of_transfers if stored is None or net_of_transfers > stored else stored
                value = max(value, _dd(peak + a["net_transfers"], eq))
        statuses.append((("limit", index, None), value, lim))

    # desk caps: sums over every user
    everyone = [a for user in desk["users"] for a in user["accounts"]]
    all_positions = [p | {"exchange": a["exchange"]} for a in everyone for p in a["positions"]]
    desk_exposure = sum((abs(_signed(p)) for p in all_positions), ZERO)
    desk_funded = [a for a in everyone if a["has_balance"]]
    desk_equity = sum((_account_figures(a)[0] for a in desk_funded), ZERO)
    desk_daily = sum((_account_figures(a)[1] for a in desk_funded), ZERO)
    caps = desk["caps"]

    def cap(name, value, threshold, symbol=None):
        statuses.append((("config", name, symbol), value, {"threshold": threshold, "warning": None}))

    if positions:
        if caps["max_total_exposure"] is not None:
            cap("max_total_exposure", desk_exposure, caps["max_total_exposure"])
        if caps["max_leverage"] is not None:
            cap("max_leverage", _leverage(desk_exposure, desk_equity, bool(desk_funded)), caps["max_leverage"])
    if funded and caps["daily_loss_limit"] is not None:
        cap("daily_loss_limit", max(ZERO, -desk_daily), caps["daily_loss_limit"])
    if funded and caps["max_drawdown_pct"] is not None:
        cap("max_drawdown_pct", drawdown, caps["max_drawdown_pct"])
    if caps["max_margin_ratio"] is not None and (margin is not None or undefined_margin):
        cap("max_margin_ratio", None if undefined_margin else margin, caps["max_margin_ratio"])
    for symbol in sorted({p["symbol"] for p in positions}):
        size_cap, leverage_cap = desk["symbol_caps"].get(symbol, (None, None))
        if size_cap is not None:
            desk_net = abs(sum((_signed(p) for p in all_positions if p["symbol"] == symbol), ZERO))
            cap("max_position_size", desk_net, size_cap, symbol)
        if leverage_cap is not None:
            used = [p["leverage"] for p in positions if p["symbol"] == symbol and p["leverage"] is not None]
            if used:
                cap("max_leverage", max(used), leverage_cap, symbol)
    for exchange in sorted({p["exchange"] for p in positions}):
        threshold = desk["exchange_caps"].get(exchange)
        if threshold is not None:
            on_exchange = sum((abs(_signed(p)) for p in all_positions if p["exchange"] == exchange), ZERO)
            cap(f"max_exposure:{exchange}", on_exchange, threshold)

    violations, warnings, level = set(), set(), 0
    for key, value, lim in statuses:
        threshold, warning = lim["threshold"], lim["warning"]
        exceeded = value is None or value >= threshold
        if exceeded:
            violations.add((key, decimal_str(value), decimal_str(threshold)))
        elif warning is not None and value >= warning:
            warnings.add((key, decimal_str(value), decimal_str(warning)))
        if value is None or value / threshold >= 1:
            status_level = 3
        else:
            u = value / threshold
            w = max(Decimal("0.5"), warning / threshold) if warning is not None else Decimal("0.8")
            status_level = 2 if u >= w else 1 if u >= Decimal("0.5") else 0
        level = max(level, status_level)
    return {
        "violations": violations,
        "warnings": warnings,
        "risk_level": ["low", "moderate", "high", "critical"][level],
        "metrics": {
            "position_size": decimal_str(max(net.values(), default=ZERO)),
            "daily_pnl": decimal_str(daily),
            "total_exposure": decimal_str(exposure),
            "margin_ratio": "Infinity" if undefined_margin else decimal_str(margin if margin is not None else ZERO),
            "leverage": decimal_str(leverage),
            "drawdown": decimal_str(drawdown),
            "daily_loss": decimal_str(max(ZERO, -daily)),
        },
    }


def _service_key(item, limit_index):
    if item["source"] == "limit":
        return ("limit", limit_index[item["limit_id"]], item["symbol"])
    name = item["cap"] if "exchange" not in item else f"{item['cap']}:{item['exchange']}"
    return ("config", name, item["symbol"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(desk=desks())
def test_evaluation_agrees_with_the_reference(desk):
    with transaction.atomic():
        users, limit_ids = _write(desk)
        result = evaluation_out(evaluation_run(user_id=users[0].pk, breakers=False))
        transaction.set_rollback(True)
    expected = reference(desk)
    limit_index = {limit_id: index for index, limit_id in limit_ids.items()}
    violations = {(_service_key(v, limit_index), v["current_value"], v["threshold"]) for v in result["violations"]}
    warnings = {(_service_key(w, limit_index), w["current_value"], w["warning_value"]) for w in result["warnings"]}
    assert result["metrics"] == expected["metrics"]
    assert violations == expected["violations"]
    assert warnings == expected["warnings"]
    assert result["risk_level"] == expected["risk_level"]
