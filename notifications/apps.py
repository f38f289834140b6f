from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from notifications.services.dispatch import alert_announced
        from risk.publish import alert_listener_add

        alert_listener_add(alert_announced)
