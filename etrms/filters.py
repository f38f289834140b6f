"""Filters every app's FilterSets share (the list-query mechanism:
`etrms.api.pagination.query_filter`)."""

import django_filters

TRUE_TEXTS = ("true", "True", "TRUE", "1")
FALSE_TEXTS = ("false", "False", "FALSE", "0")


class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """true/false only (`1`/`0` too): `maybe` is a 400, never "not filtered"."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [(text, text) for text in (*TRUE_TEXTS, *FALSE_TEXTS)])
        kwargs.setdefault("coerce", lambda text: text in TRUE_TEXTS)
        super().__init__(*args, **kwargs)


def filters_apply(filterset_class, queryset, values: dict):
    """`queryset` narrowed by the FilterSet's filters with `values`, its validated
    parameters (`etrms.api.pagination.query_filter_values`), as the FilterSet itself
    filters (empty values leave a filter out)."""
    filters = filterset_class(queryset=queryset).filters
    for name, value in values.items():
        queryset = filters[name].filter(queryset, value)
    return queryset
