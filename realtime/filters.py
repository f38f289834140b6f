"""The price-alert list's filters, as a FilterSet shared by the API
(`etrms.api.pagination.query_filter`) and the admin's sidebar."""

import django_filters

from realtime.models import PriceAlert, PriceAlertStatus


class PriceAlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PriceAlertStatus.choices)

    class Meta:
        model = PriceAlert
        fields = ("status",)
