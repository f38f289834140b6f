"""Pages of a hot list whose SQL is compiled once per shape (`GET /risk/limits`).

Building a queryset and compiling it cost more than running it: 0.8 ms of a 4 ms
`GET /risk/limits` whose query fetched 50 rows in 0.2 ms. A list names what changes
its SQL text (its *shape*: the viewer's role, which filters are given) apart from what
only changes the parameters (its *values*: user ids, filter texts). The first call of a
shape builds the queryset with stand-in values, compiles it, and keeps the SQL, the
places of the stand-ins among its parameters, and the columns' converters (Django's
own: decimals, booleans, JSON); every call runs that SQL with its own values in those
places and its own page. Only SQL text is reused: each value is a parameter of its own
call, so a page can never carry another call's rows.

Which values are parameters: UUIDs and non-empty strings (a shape is compiled per
type: pass ids as UUIDs, which the ORM validates). Anything else (a boolean,
None, an empty string) is part of the shape and reaches `build` as it is, because the
ORM writes it into the SQL (`IS NULL`) or leaves the filter out (django-filter skips
empty values). A stand-in written into the SQL text or turned into another parameter
(a LIKE pattern) is an error rather than a silent misread; one `build` does not use
(an officer's own id, where everyone's rows are read) simply has no place.

`etrms.text_rows` compiles the risk engine's UNION reads the same way (text columns,
fixed stand-ins); this module serves querysets read with Django's converters.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet

_STAND_IN_NAMESPACE = uuid.UUID("5e971ae1-0000-4000-8000-00000000c0de")
_COMPILED_MAX = 256


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple  # (parameter index, value name, form: "same" | "hex")
    converters: tuple  # (column index, converters, expression), Django's


_compiled: dict = {}


def _is_parameter(value) -> bool:
    return isinstance(value, uuid.UUID) or (isinstance(value, str) and value != "")


def _stand_in(name: str, value):
    if isinstance(value, uuid.UUID):
        return uuid.uuid5(_STAND_IN_NAMESPACE, name)
    return f"stand-in:{name}:{uuid.uuid5(_STAND_IN_NAMESPACE, name).hex}"


def _compile(queryset: QuerySet, stand_ins: dict, *, using: str) -> _Compiled:
    if queryset.query.is_sliced:
        raise ValueError("compiled pages take an unsliced queryset (the page is each call's)")
    if not queryset.ordered:
        raise ValueError("compiled pages take an ordered queryset (a page of an unordered one is arbitrary)")
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    if compiler.has_extra_select:
        raise ValueError("compiled pages read only the selected columns")
    slots = []
    for name, stand_in in stand_ins.items():
        forms = {"same": stand_in} | ({"hex": stand_in.hex} if isinstance(stand_in, uuid.UUID) else {})
        texts = {str(form) for form in forms.values()} | {str(stand_in)}
        if any(text in sql for text in texts):
            raise RuntimeError(f"{name}: a stand-in value was written into the SQL text, not passed as a parameter")
        for index, param in enumerate(params):
            form = next((form for form, value in forms.items() if type(param) is type(value) and param == value), None)
            if form is not None:
                slots.append((index, name, form))
            elif isinstance(param, str) and any(text in param for text in texts):
                # e.g. a LIKE pattern made of it: the call's value would not take its place
                raise RuntimeError(f"{name}: a stand-in value was transformed into another parameter")
    columns = [selected[0] for selected in compiler.select]
    converters = tuple(
        (index, tuple(convs), expression) for index, (convs, expression) in compiler.get_converters(columns).items()
    )
    return _Compiled(sql, tuple(params), tuple(slots), converters)


def compiled_page(
    key: str, build: Callable[[dict], QuerySet], values: dict, *, limit: int, offset: int, using: str = "default"
) -> list[tuple]:
    """The rows `build(values)` would give for `[offset:offset + limit]`, as tuples.

    `build` makes an ordered, unsliced `values_list()` queryset from `values`, the same
    way every time (the caller's `key` names the function); it is called with stand-ins
    the first time a shape is met, and never again for it."""
    connection = connections[using]
    shape = tuple((name, type(value) if _is_parameter(value) else value) for name, value in sorted(values.items()))
    cache_key = (using, connection.vendor, key, shape)
    compiled = _compiled.get(cache_key)
    if compiled is None:
        stand_ins = {name: _stand_in(name, value) for name, value in values.items() if _is_parameter(value)}
        compiled = _compile(build(values | stand_ins), stand_ins, using=using)
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        _compiled[cache_key] = compiled
    params = list(compiled.params)
    for index, name, form in compiled.slots:
        params[index] = values[name].hex if form == "hex" else values[name]
    sql = f"{compiled.sql} {connection.ops.limit_offset_sql(offset, offset + limit)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return rows_converted(rows, compiled.converters, connection)


def column_converters(expressions, connection) -> tuple:
    """Django's converters of the columns `expressions` select, as the compiler finds
    them: (column index, converters, expression) for each column that has any."""
    converters = []
    for index, expression in enumerate(expressions):
        convs = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if convs:
            converters.append((index, tuple(convs), expression))
    return tuple(converters)


def rows_converted(rows: list, converters: tuple, connection) -> list[tuple]:
    """`rows` as the ORM would read them: each column through its converters."""
    if not converters:
        return rows
    converted = []
    for row in rows:
        row = list(row)
        for index, convs, expression in converters:
            value = row[index]
            for convert in convs:
                value = convert(value, expression, connection)
            row[index] = value
        converted.append(tuple(row))
    return converted
