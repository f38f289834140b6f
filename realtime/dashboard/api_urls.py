"""The dashboard's read-only API, relative to /api/v1/."""

from django.urls import path

from realtime.dashboard import api

urlpatterns = [
    path("dashboard/risk", api.DashboardRiskApi.as_view(), name="dashboard-risk"),
    path("dashboard/breakers", api.DashboardBreakersApi.as_view(), name="dashboard-breakers"),
]
