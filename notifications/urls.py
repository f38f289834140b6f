"""Notification routes, relative to /api/v1/."""

from django.urls import path

from notifications import api

urlpatterns = [
    path("notifications/endpoints", api.EndpointListApi.as_view(), name="notification-endpoints"),
    path("notifications/endpoints/<uuid:endpoint_id>", api.EndpointDetailApi.as_view(), name="notification-endpoint"),
    path("notifications/endpoints/<uuid:endpoint_id>/test", api.EndpointTestApi.as_view(), name="notification-test"),
    path("notifications/deliveries", api.DeliveryListApi.as_view(), name="notification-deliveries"),
]
