# ruff: noqa: S608 -- SQL text here is the ORM's own; values are parameters.
"""Rows read as database text: ORM querysets as text-typed members of one UNION ALL,
compiled once per shape and run with each call's values (`risk.services.request_loads`
with `accounts.selectors.book_rows`), and the parsers of that text.

Every member is an ORM query whose columns are cast to text (PostgreSQL needs one type
per column; the loaders parse decimals and timestamps from text anyway, see
`snapshots`), tagged by its kind and padded to one width with NULLs.

Building and compiling the querysets costs more than running them (about 7 ms of a
100 x 50 evaluation). The SQL depends only on the caller's shape, so each shape
is compiled once per process with stand-in values (`SENTINELS`), which each call swaps
for its own user, UTC day and time windows. Only SQL text is reused: every value that
time changes is a parameter of the call.
"""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

from django.db import connection
from django.db.models import CharField, DateField, DateTimeField, F, UUIDField, Value
from django.db.models.functions import Cast

SENTINELS = {
    "user": uuid.UUID("5e971ae1-0000-4000-8000-000000000001"),
    "day": date(1970, 1, 2),
    "alerts_since": datetime(1970, 1, 3, 0, 0, 1, tzinfo=UTC),
    "live_since": datetime(1970, 1, 4, 0, 0, 1, tzinfo=UTC),
}
_compiled: dict = {}
_COMPILED_MAX = 64


def member(queryset, kind: str, columns: list, width: int):
    """`queryset` as text columns: its kind, then `columns` (names or expressions);
    `union_sql` pads it to `width` with NULLs."""
    assert len(columns) < width
    names = {
        f"c{index}": Cast(column if not isinstance(column, str) else F(column), output_field=CharField())
        for index, column in enumerate(columns)
    }
    return queryset.order_by().annotate(kind=Value(kind, output_field=CharField()), **names).values_list("kind", *names)


def union_sql(members: list, width: int) -> tuple[str, list]:
    """The members as one UNION ALL of `width` columns, NULL-padded (each member a
    derived table, so their own ORDER BY and window filters stay theirs)."""
    parts, params = [], []
    for index, part in enumerate(members):
        sql, member_params = part.query.sql_with_params()
        # By name: a window filter's wrapper selects helper columns of its own (and on
        # PostgreSQL drops repeated constants, hence the padding out here).
        names = list(part.query.annotation_select)
        columns = ", ".join([*(connection.ops.quote_name(name) for name in names), *["NULL"] * (width - len(names))])
        parts.append(f"SELECT {columns} FROM ({sql}) AS m{index}")  # the ORM's SQL; its params kept apart
        params.extend(member_params)
    return " UNION ALL ".join(parts), params


_UUID, _DATETIME, _DATE = UUIDField(), DateTimeField(), DateField()  # built once: a field's __init__ is not free


def _form_makers(value) -> tuple:
    """How the ORM may pass `value` as a query parameter: as itself, or in one of its
    text forms (the database's own last)."""
    if isinstance(value, uuid.UUID):
        return (_itself, _hex, str, _uuid_db)
    if isinstance(value, datetime):
        return (_itself, _datetime_db)
    return (_itself, str, _date_db)


def _itself(value):
    return value


def _hex(value: uuid.UUID) -> str:
    return value.hex


def _uuid_db(value):
    return _UUID.get_db_prep_value(value, connection)


def _datetime_db(value):
    return _DATETIME.get_db_prep_value(value, connection)


def _date_db(value):
    return _DATE.get_db_prep_value(value, connection)


def _forms(value) -> list:
    return [make(value) for make in _form_makers(value)]


def _compile(shape_members: list, width: int) -> tuple[str, list, tuple]:
    """The union's SQL, its parameters, and where the stand-ins are among them:
    ((index, value name, form), ...)."""
    sql, params = union_sql(shape_members, width)
    slots = []
    for name, sentinel in SENTINELS.items():
        forms = _forms(sentinel)
        if any(isinstance(form, str) and form in sql for form in forms):
            raise RuntimeError("a stand-in value was written into the SQL text, not passed as a parameter")
        for index, param in enumerate(params):
            for form_index, form in enumerate(forms):
                if type(param) is type(form) and param == form:
                    slots.append((index, name, form_index))
    return sql, params, tuple(slots)


def compiled_rows(shape: tuple, build, values: dict, *, width: int) -> list[tuple]:
    """Run the union `build(SENTINELS)` makes, with `values` in place of the sentinels."""
    key = (connection.vendor, shape)
    compiled = _compiled.get(key)
    if compiled is None:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        compiled = _compiled[key] = _compile(build(SENTINELS), width)
    sql, template, slots = compiled
    params = list(template)
    for index, name, form_index in slots:
        actual = values.get(name)  # a stand-in without a value stays itself
        if actual is not None:
            makers = _form_makers(actual)
            if len(makers) != len(_form_makers(SENTINELS[name])):
                raise TypeError(f"{name}: {type(actual).__name__} in place of {type(SENTINELS[name]).__name__}")
            params[index] = makers[form_index](actual)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def text_bool(text) -> bool:
    return text in ("1", "true", "t", "True")


def text_decimal(text) -> Decimal | None:
    return None if text is None else Decimal(text)


@lru_cache(maxsize=4096)
def text_datetime(text) -> datetime | None:
    """A database timestamp's text as an aware datetime. Cached: a sync stamps every
    position of a venue read with one time and a tick every position of its symbol, so a
    book repeats a few texts thousands of times (datetimes are immutable)."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
