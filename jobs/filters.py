"""The jobs lists' filters, as FilterSets: the API's pending list
(`etrms.api.pagination.query_filter`) and the admin's sidebar
(`etrms.admin_tools.filterset_list_filter`) filter the same field the same way."""

import django_filters

from jobs.models import Job, JobPriority


class JobFilter(django_filters.FilterSet):
    priority = django_filters.ChoiceFilter(choices=JobPriority.choices)

    class Meta:
        model = Job
        fields = ("priority",)
