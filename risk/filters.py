"""The risk lists' filters, as FilterSets: the API's lists (`etrms.api.pagination.
query_filter`) and the admin's sidebar (`etrms.admin_tools.filterset_list_filter`)
filter the same field the same way."""

import django_filters
from django import forms
from django.core.validators import RegexValidator

from etrms.filters import StrictBooleanFilter
from risk.constants import AlertSeverity, AlertStatus, LimitType
from risk.models import LimitChange, LimitChangeStatus, RiskAlert, RiskLimit
from risk.validators import symbol_normalize

ALERT_TYPE_PATTERN = r"^[a-z_]{1,48}$"


class SymbolField(forms.CharField):
    """An exchange-style symbol (`btcusdt` -> `BTCUSDT`); anything else is invalid."""

    def clean(self, value):
        value = super().clean(value)
        return symbol_normalize(value, field=None) if value else value


class SymbolFilter(django_filters.CharFilter):
    field_class = SymbolField


class LimitFilter(django_filters.FilterSet):
    """`symbol` matches exactly (a limit on every symbol is not one of BTCUSDT's)."""

    symbol = SymbolFilter(max_length=32)
    limit_type = django_filters.ChoiceFilter(choices=LimitType.choices)
    enabled = StrictBooleanFilter()

    class Meta:
        model = RiskLimit
        fields = ("symbol", "limit_type", "enabled")


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.ChoiceFilter(choices=AlertSeverity.choices)
    alert_type = django_filters.CharFilter(validators=[RegexValidator(ALERT_TYPE_PATTERN)])

    class Meta:
        model = RiskAlert
        fields = ("status", "severity", "alert_type")


class LimitChangeFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=LimitChangeStatus.choices)

    class Meta:
        model = LimitChange
        fields = ("status",)
