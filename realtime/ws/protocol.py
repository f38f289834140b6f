"""The `/api/v1/ws` message protocol (SPEC §7): what a client may send, and the control
frames the server answers with. Every frame names its `channel`; control frames not
tied to one (pong, a message that is not JSON) name the channel `system`.

Client messages: `{"action": "subscribe" | "unsubscribe", "channel", "symbols"?,
"exchange"?, "user_id"?, "since_alert_id"?}` and `{"action": "ping"}`.
"""

import json
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

# Pure: imported by the URL conf (the management API), so it imports no domain module.
POSITIONS, ACCOUNTS, RISK_METRICS, ALERTS = "positions", "accounts", "risk-metrics", "alerts"
MARKET_CHANNELS = ("ticker", "trades")
STREAM_CHANNELS = (POSITIONS, ACCOUNTS, RISK_METRICS, ALERTS)
CHANNELS = MARKET_CHANNELS + STREAM_CHANNELS
ACTIONS = ("subscribe", "unsubscribe", "ping")
SYSTEM = "system"
MAX_MESSAGE_CHARS = 16_384


# ETRMS channels a socket may narrow to symbols; accounts and risk-metrics are account-level
# figures (balances, equity, drawdown) that no symbol splits.
SYMBOL_STREAMS = (POSITIONS, ALERTS)


class StreamView(NamedTuple):
    """What one ETRMS stream subscription covers: `scope` is a user id (str) or None
    (the desk); `symbols` the symbols it is narrowed to (empty: every symbol)."""

    scope: str | None
    symbols: frozenset = frozenset()

    def covers(self, symbol: str | None) -> bool:
        """Whether an item about `symbol` belongs in this view; an item about no symbol
        (an account-wide or desk-wide alert) belongs in every view."""
        return not self.symbols or symbol is None or symbol in self.symbols

    def labels(self, channel: str, user_id: str) -> list[str]:
        """How the registry shows it: `positions`, `positions:user_id=<id>`, one
        `positions:BTCUSDT` per symbol it is narrowed to."""
        base = channel if self.scope is None or self.scope == user_id else f"{channel}:user_id={self.scope}"
        return [f"{base}:{symbol}" for symbol in sorted(self.symbols)] or [base]


class ProtocolError(Exception):
    def __init__(self, message: str, *, channel: str = SYSTEM, action: str | None = None):
        super().__init__(message)
        self.message, self.channel, self.action = message, channel, action


@dataclass
class Request:
    action: str
    channel: str = SYSTEM
    symbols: list = field(default_factory=list)
    exchange: str | None = None
    user_id: str | None = None
    since_alert_id: str | None = None
    request_id: object = None


def _uuid(value, name: str, request: dict) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ProtocolError(f"{name} must be a UUID.", channel=request.get("channel") or SYSTEM) from None


def request_parse(text: str | None, *, max_symbols: int) -> Request:
    """A validated request, or ProtocolError with the message for the error frame."""
    if text is None or len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError("Send JSON text messages of at most 16 KB.")
    try:
        body = json.loads(text)
    except ValueError:
        raise ProtocolError("Invalid JSON.") from None
    if not isinstance(body, dict):
        raise ProtocolError("A message is a JSON object with an action.")
    action = body.get("action")
    if action not in ACTIONS:
        raise ProtocolError(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.")
    if action == "ping":
        return Request(action="ping", request_id=body.get("id"))
    channel = body.get("channel")
    if channel not in CHANNELS:
        raise ProtocolError(
            f"Unknown channel {channel!r}; use one of {', '.join(CHANNELS)}.",
            channel=channel if isinstance(channel, str) else SYSTEM,
            action=action,
        )
    symbols = body.get("symbols")
    if symbols is None:
        symbols = []
    if not isinstance(symbols, list) or not all(isinstance(symbol, str) and symbol.strip() for symbol in symbols):
        raise ProtocolError("symbols must be a list of symbol names.", channel=channel, action=action)
    symbols = list(dict.fromkeys(symbol.strip().upper() for symbol in symbols))
    if channel in MARKET_CHANNELS and not symbols:
        raise ProtocolError(f"Name the symbols of the {channel} channel.", channel=channel, action=action)
    if symbols and action == "subscribe" and channel not in MARKET_CHANNELS + SYMBOL_STREAMS:
        raise ProtocolError(
            f"The {channel} channel carries account-level figures: it takes no symbols.",
            channel=channel,
            action=action,
        )
    if len(symbols) > max_symbols:
        raise ProtocolError(f"Too many symbols: at most {max_symbols} a connection.", channel=channel, action=action)
    exchange = body.get("exchange")
    if exchange is not None and not isinstance(exchange, str):
        raise ProtocolError("exchange must be an exchange id.", channel=channel, action=action)
    since = body.get("since_alert_id")
    if since is not None and channel != ALERTS:
        raise ProtocolError("since_alert_id belongs to the alerts channel.", channel=channel, action=action)
    return Request(
        action=action,
        channel=channel,
        symbols=symbols,
        exchange=exchange,
        user_id=_uuid(body.get("user_id"), "user_id", body),
        since_alert_id=_uuid(since, "since_alert_id", body),
        request_id=body.get("id"),
    )


def _frame(kind: str, channel: str, request_id, **fields) -> str:
    frame = {"type": kind, "channel": channel, **fields}
    if request_id is not None:
        frame["id"] = request_id
    return json.dumps(frame, separators=(",", ":"))


def ack_frame(request: Request, *, symbols: list, subscriptions: list) -> str:
    return _frame(
        "ack", request.channel, request.request_id, action=request.action, symbols=symbols, subscriptions=subscriptions
    )


def error_frame(error: ProtocolError, request_id=None) -> str:
    fields = {"message": error.message}
    if error.action:
        fields["action"] = error.action
    return _frame("error", error.channel, request_id, **fields)


def pong_frame(request: Request, *, at: str) -> str:
    return _frame("pong", SYSTEM, request.request_id, timestamp=at)
