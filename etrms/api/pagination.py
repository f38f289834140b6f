"""`limit` and `offset` on lists (SPEC §3): `limit` defaults as the seed says and is
capped at 1000; zero, negative or not a number is a 400; `offset` is on every list.
An offset past the databases' 64-bit OFFSET is capped like `limit` (an empty page, as any
offset past the end gives), not sent to the database, which fails on it (a 500)."""

from rest_framework.exceptions import ValidationError

MAX_LIMIT = 1000
# OFFSET is a signed 64-bit integer in SQLite and PostgreSQL; LIMIT + OFFSET must fit too.
MAX_OFFSET = 2**63 - 1 - MAX_LIMIT


def _non_negative_int(request, name: str, default: int, *, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"Must be an integer, got {raw!r}."]}) from None
    if value < minimum:
        raise ValidationError({name: [f"Must be at least {minimum}."]})
    return value


def limit_offset(request, *, default_limit: int) -> tuple[int, int]:
    limit = min(_non_negative_int(request, "limit", default_limit, minimum=1), MAX_LIMIT)
    offset = min(_non_negative_int(request, "offset", 0, minimum=0), MAX_OFFSET)
    return limit, offset


def page(queryset, *, limit: int, offset: int) -> list:
    return list(queryset[offset : offset + limit])
