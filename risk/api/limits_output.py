"""How a Phase 4 limit looks in responses (decimal strings, ISO times), in the list and
on the item endpoints alike: built from a row of `GET /risk/limits`' read (`LIMIT_ROW`,
ids and times as the database's text: cheaper than Django's converters), or from a
model instance read in the same order.

A list formats up to 1,000 rows a request, so this is one plain loop; an owner's id and
a timestamp that repeat along the page are converted once."""

from etrms.formatting import decimal_str, iso_utc
from risk.api.outputs import ladder_out, uuid_text
from risk.models import RiskLimit

LIMIT_ROW_TEXT = ("id", "user_id", "set_by_id", "created_at", "updated_at")
LIMIT_ROW = ("symbol", "limit_type", "threshold_value", "warning_value", "enabled", "ladder", *LIMIT_ROW_TEXT)
# The columns of the list's query: LIMIT_ROW, the LIMIT_ROW_TEXT fields as their text.
LIMIT_ROW_COLUMNS = tuple(f"{name}_text" if name in LIMIT_ROW_TEXT else name for name in LIMIT_ROW)
_ID, _LADDER = LIMIT_ROW.index("id"), LIMIT_ROW.index("ladder")


def limit_row(limit: RiskLimit) -> tuple:
    """`limit` as a row of the list's read (`LIMIT_ROW`)."""
    return tuple(getattr(limit, name) for name in LIMIT_ROW)


def laddered_limit_ids(rows: list[tuple]) -> list:
    """The ids of the rows whose limit has a ladder: the limits whose latches `limits_out` shows."""
    return [row[_ID] for row in rows if row[_LADDER]]


def limits_out(rows: list[tuple], *, with_user: bool, latches: dict) -> list[dict]:
    """Phase 4 limits from `LIMIT_ROW` rows. `with_user` adds `user_id` (officers'
    views, and create); `latches` ({limit id text: {at_pct: [LadderTrip]}},
    risk.selectors.ladder_latches_get) marks the ladder steps latched."""
    ids: dict = {}
    times: dict = {}
    out = []
    for symbol, limit_type, threshold, warning, enabled, ladder, limit_id, user, set_by, created, updated in rows:
        limit_id = uuid_text(limit_id)
        user_id = ids.get(user) or ids.setdefault(user, uuid_text(user))
        set_by_id = None if set_by is None else ids.get(set_by) or ids.setdefault(set_by, uuid_text(set_by))
        data = {"id": limit_id}
        if with_user:
            data["user_id"] = user_id
        data["symbol"] = symbol
        data["limit_type"] = limit_type
        data["threshold_value"] = decimal_str(threshold)
        data["warning_value"] = decimal_str(warning)
        data["enabled"] = enabled
        data["officer_set"] = set_by_id is not None and set_by_id != user_id
        data["created_at"] = times.get(created) or times.setdefault(created, iso_utc(created))
        data["updated_at"] = times.get(updated) or times.setdefault(updated, iso_utc(updated))
        data["ladder"] = ladder_out(ladder, latches.get(limit_id, {})) if ladder else []
        out.append(data)
    return out


def limit_item_out(limit: RiskLimit, *, with_user: bool, latches: dict) -> dict:
    """One limit as the list shows it (the item endpoints)."""
    return limits_out([limit_row(limit)], with_user=with_user, latches=latches)[0]
