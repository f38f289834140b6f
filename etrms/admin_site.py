"""The admin site, laid out for a risk officer (issue 13 item 4): the index groups the
models by the job (risk first, then accounts and positions, jobs, users), with the paper
exchange's internals and the change history in sections of their own at the end, and
every model admin shows decimals as people write them (`etrms.admin_tools.
HumanDecimalsMixin`, added here to each admin as it is registered, so no app repeats it).

Models are named by `app_label.ObjectName` (the platform imports no app); a model no
section names (a new app's) keeps its app's own section after the named ones, so nothing
registered ever disappears from the index.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from etrms.admin_tools import with_human_decimals

HISTORY = "history"  # every `Historical*` model simple_history registers
SECTIONS = (
    (
        "Risk",
        (
            "risk.RiskAlert",
            "risk.RiskLimit",
            "risk.LimitChange",
            "risk.CircuitBreaker",
            "risk.BreakerTrip",
            "risk.LadderTrip",
            "risk.KillSwitch",
            "risk.TradingState",
            "risk.GlobalConfig",
            "risk.SymbolConfig",
            "risk.ExchangeConfig",
        ),
    ),
    (
        "Accounts and positions",
        (
            "accounts.Position",
            "accounts.Balance",
            "accounts.ExchangeAccount",
            "accounts.ClosedTrade",
            "accounts.AccountDay",
            "accounts.MonitoringState",
            "realtime.PriceAlert",
        ),
    ),
    (
        "Jobs",
        (
            "jobs.Job",
            "django_celery_beat.PeriodicTask",
            "django_celery_beat.CrontabSchedule",
            "django_celery_beat.IntervalSchedule",
            "django_celery_beat.ClockedSchedule",
            "django_celery_beat.SolarSchedule",
        ),
    ),
    (
        "Notifications",
        ("notifications.NotificationEndpoint", "notifications.Delivery", "notifications.AlertEscalation"),
    ),
    ("Users and roles", ("accounts.User", "auth.Group")),
    (
        "Paper exchange (simulated venue internals)",
        (
            "accounts.PaperMarket",
            "accounts.PaperWallet",
            "accounts.PaperPosition",
            "accounts.PaperOrder",
            "accounts.PaperFill",
        ),
    ),
)
HISTORY_SECTION = "Change history"


def _key(model_dict: dict) -> str:
    return f"{model_dict['model']._meta.app_label}.{model_dict['object_name']}"


def sections_group(app_list: list[dict]) -> list[dict]:
    """Django's per-app list regrouped into SECTIONS (in their order, models in the
    order named), then the apps' leftover models, then the change history."""
    by_key, leftovers, history = {}, {}, []
    for app in app_list:
        for model_dict in app["models"]:
            if model_dict["object_name"].startswith("Historical"):
                history.append((app, model_dict))
            else:
                by_key[_key(model_dict)] = (app, model_dict)
    named = {key for _, keys in SECTIONS for key in keys}
    grouped = []
    for title, keys in SECTIONS:
        members = [by_key[key] for key in keys if key in by_key]
        if members:
            grouped.append(_section(title, members))
    for app in app_list:
        rest = [(app, m) for m in app["models"] if _key(m) in by_key and _key(m) not in named]
        if rest:
            leftovers[app["app_label"]] = _section(app["name"], rest)
    grouped.extend(leftovers.values())
    if history:
        grouped.append(_section(HISTORY_SECTION, sorted(history, key=lambda pair: pair[1]["name"]), label=HISTORY))
    return grouped


def _section(title: str, members: list[tuple[dict, dict]], *, label: str | None = None) -> dict:
    first_app = members[0][0]
    return {
        "name": title,
        "app_label": label or first_app["app_label"],
        "app_url": first_app["app_url"],
        "has_module_perms": True,
        "models": [model_dict for _, model_dict in members],
    }


class EtrmsAdminSite(admin.AdminSite):
    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        return app_list if app_label is not None else sections_group(app_list)

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, with_human_decimals(admin_class or admin.ModelAdmin), **options)


class EtrmsAdminConfig(AdminConfig):
    """django.contrib.admin with this site as `admin.site` (INSTALLED_APPS names it)."""

    default_site = "etrms.admin_site.EtrmsAdminSite"
