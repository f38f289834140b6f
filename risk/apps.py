from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"

    def ready(self):
        from accounts.events import on_positions_changed
        from accounts.services.monitoring import monitoring_interval_provider_set
        from risk.services import hooks
        from risk.services.listeners import limits_changed_listener, positions_changed_listener

        on_positions_changed(positions_changed_listener)
        hooks.limit_listener_add(limits_changed_listener)
        monitoring_interval_provider_set(_monitoring_interval)


def _monitoring_interval() -> int:
    from risk.models import GlobalConfig

    config = GlobalConfig.objects.filter(pk=GlobalConfig.SINGLETON_PK).only("monitoring_interval_seconds").first()
    return (
        config.monitoring_interval_seconds
        if config
        else GlobalConfig._meta.get_field("monitoring_interval_seconds").default
    )
