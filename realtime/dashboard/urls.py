"""Dashboard routes at the site root: the page, login/logout and the session token endpoint."""

from django.urls import path

from realtime.dashboard import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.DashboardLoginView.as_view(), name="dashboard-login"),
    path("logout/", views.DashboardLogoutView.as_view(), name="dashboard-logout"),
    path("dashboard/token", views.dashboard_token, name="dashboard-token"),
]
