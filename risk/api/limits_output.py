"""How a Phase 4 limit looks in responses (decimal strings, ISO times), in the list and
on the item endpoints alike: built from a row of `GET /risk/limits`' read (`LIMIT_ROW`,
ids, times and the ladder as the database's text: cheaper than Django's converters),
or from a model instance read in the same form.

A limit's output is a function of its row alone (and of whether the caller sees
`user_id`), except the ladder steps' latches, which are each request's. The list reads
every row on every request, so a limit that changed is a different row: its output is
kept per row (`_formatted`, bounded) and a page of unchanged limits costs dictionary
lookups, not 50 rows of decimal and time formatting."""

import json

from etrms.formatting import decimal_str, iso_utc
from risk.api.outputs import ladder_out, uuid_text
from risk.models import RiskLimit

LIMIT_ROW_TEXT = ("id", "user_id", "set_by_id", "created_at", "updated_at", "ladder")
LIMIT_ROW = ("symbol", "limit_type", "threshold_value", "warning_value", "enabled", *LIMIT_ROW_TEXT)
# The columns of the list's query: LIMIT_ROW, the LIMIT_ROW_TEXT fields as their text.
LIMIT_ROW_COLUMNS = tuple(f"{name}_text" if name in LIMIT_ROW_TEXT else name for name in LIMIT_ROW)
_ID, _LADDER = LIMIT_ROW.index("id"), LIMIT_ROW.index("ladder")
_NO_LADDER = (None, "[]")

_FORMATTED_MAX = 4096
_formatted: dict[tuple, tuple[dict, list]] = {}


def limit_row(limit: RiskLimit) -> tuple:
    """`limit` as a row of the list's read (`LIMIT_ROW`; the ladder as JSON text)."""
    row = [getattr(limit, name) for name in LIMIT_ROW]
    row[_LADDER] = None if limit.ladder is None else json.dumps(limit.ladder)
    return tuple(row)


def laddered_limit_ids(rows: list[tuple]) -> list:
    """The ids of the rows whose limit has a ladder: the limits whose latches `limits_out` shows."""
    return [row[_ID] for row in rows if row[_LADDER] not in _NO_LADDER]


def _limit_format(row: tuple, *, with_user: bool) -> tuple[dict, list]:
    """The limit's output without its ladder's latches, and its ladder steps."""
    symbol, limit_type, threshold, warning, enabled, limit_id, user, set_by, created, updated, ladder = row
    user_id, set_by_id = uuid_text(user), uuid_text(set_by)
    data = {"id": uuid_text(limit_id)}
    if with_user:
        data["user_id"] = user_id
    data["symbol"] = symbol
    data["limit_type"] = limit_type
    data["threshold_value"] = decimal_str(threshold)
    data["warning_value"] = decimal_str(warning)
    data["enabled"] = enabled
    data["officer_set"] = set_by_id is not None and set_by_id != user_id
    data["created_at"] = iso_utc(created)
    data["updated_at"] = iso_utc(updated)
    return data, ([] if ladder in _NO_LADDER else json.loads(ladder) or [])


def _with_ladder(formatted: tuple[dict, list], latches: dict) -> dict:
    """The output (a dict of its own) with its ladder's steps latched now."""
    data, steps = formatted
    return {**data, "ladder": ladder_out(steps, latches.get(data["id"], {}))}


def limits_out(rows: list[tuple], *, with_user: bool, latches: dict) -> list[dict]:
    """Phase 4 limits from `LIMIT_ROW` rows. `with_user` adds `user_id` (officers'
    views, and create); `latches` ({limit id text: {at_pct: [LadderTrip]}},
    risk.selectors.ladder_latches_get) marks the ladder steps latched."""
    out = []
    for row in rows:
        key = (row, with_user)
        formatted = _formatted.get(key)
        if formatted is None:
            if len(_formatted) >= _FORMATTED_MAX:
                _formatted.clear()
            formatted = _formatted[key] = _limit_format(row, with_user=with_user)
        out.append(_with_ladder(formatted, latches))
    return out


def limit_item_out(limit: RiskLimit, *, with_user: bool, latches: dict) -> dict:
    """One limit as the list shows it (the item endpoints; not kept: items are read one at a time)."""
    return _with_ladder(_limit_format(limit_row(limit), with_user=with_user), latches)
