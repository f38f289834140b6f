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
