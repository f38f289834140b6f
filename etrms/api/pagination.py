"""The one list-query mechanism (SPEC §3). `limit` and `offset`: `limit` defaults as the
seed says and is capped at 1000; zero, negative or not a number is a 400; `offset` is on
every list. A list declares its paging (and `user_id`) as a `PageQuery` subclass, read
with `query_validate`, and its filters as a django-filter `FilterSet` (STYLE §3, as
NetBox does; the admin's list filters reuse it), applied with `query_filter`: an
unknown enum value or a malformed filter is a 400 with the field's error, and any
parameter given twice is a 400.
An offset past the databases' 64-bit OFFSET is capped like `limit` (an empty page, as any
offset past the end gives), not sent to the database, which fails on it (a 500)."""

from collections.abc import Callable

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from etrms.filters import filters_apply

MAX_LIMIT = 1000
# OFFSET is a signed 64-bit integer in SQLite and PostgreSQL; LIMIT + OFFSET must fit too.
MAX_OFFSET = 2**63 - 1 - MAX_LIMIT


class PageQuery(serializers.Serializer):
    """`limit` (1.., capped at MAX_LIMIT) and `offset` (0.., capped at MAX_OFFSET)."""

    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)
    user_id = serializers.UUIDField(required=False)

    default_limit = MAX_LIMIT


def _given_once(request, keys) -> dict:
    """{key: value} of the query parameters among `keys`; one given twice is a 400."""
    raw = {}
    for key in keys:
        values = request.query_params.getlist(key)
        if len(values) > 1:
            raise ValidationError({key: ["Give this parameter once."]})
        if values:
            raw[key] = values[0]
    return raw


def query_validate(serializer_class, request) -> dict:
    """Validate query parameters (each given once); errors are 400s. Without any of
    them, the defaults (no serializer is built: lists are the hot reads)."""
    raw = _given_once(request, serializer_class._declared_fields)
    if raw:
        serializer = serializer_class(data=raw)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
    else:
        data = {"offset": 0}
    data["limit"] = min(data.get("limit") or serializer_class.default_limit, MAX_LIMIT)
    data["offset"] = min(data["offset"], MAX_OFFSET)
    return data


def page(queryset, *, limit: int, offset: int) -> list:
    return list(queryset[offset : offset + limit])


def query_filter_values(filterset_class, request, *, defaults: dict | None = None) -> dict:
    """The list's FilterSet parameters (each given once; `defaults` for those not
    given), validated: {filter name: cleaned value}, empty values meaning "not
    filtered"; {} when none is given. An invalid value is a 400 naming the parameter."""
    raw = {**(defaults or {}), **_given_once(request, filterset_class.base_filters)}
    if not raw:
        return {}
    filterset = filterset_class(data=raw)
    if not filterset.is_valid():
        raise ValidationError({key: list(messages) for key, messages in filterset.errors.items()})
    return dict(filterset.form.cleaned_data)


def query_filter(filterset_class, queryset, request, *, defaults: dict | None = None):
    """`queryset` narrowed by the list's FilterSet from the request's query parameters
    (each given once; `defaults` for those not given); an invalid value is a 400
    naming the parameter."""
    values = query_filter_values(filterset_class, request, defaults=defaults)
    return filters_apply(filterset_class, queryset, values) if values else queryset


def page_count(count: Callable[[], int], rows: list, *, limit: int, offset: int) -> int:
    """The total behind a page: without a query when the page is the last one (short,
    or empty at offset 0); a full page or one past the end asks `count()`."""
    if (rows and len(rows) < limit) or (offset == 0 and not rows):
        return offset + len(rows)
    return count()
