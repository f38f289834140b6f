"""The officer's console for graded ladders (issue 15): on a limit's change form its
steps with which are latched (and a link to its step trips); a read-only list of every
step trip, filterable by limit. Imported by `risk.admin`."""

from decimal import Decimal

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from etrms.admin_tools import ReadOnlyAdminMixin
from risk.models import LadderTrip, RiskLimit
from risk.selectors import ladder_latches_get


def ladder_state(limit: RiskLimit) -> str:
    """Each step of `limit`'s ladder: latched (where, since when, how its action went)
    or armed."""
    if not limit.pk or not limit.ladder:
        return "No ladder."
    latches = ladder_latches_get(limit_ids=[limit.pk]).get(str(limit.pk), {})
    rows = []
    for step in limit.ladder:
        trips = latches.get(Decimal(step["at_pct"]), [])
        state = "; ".join(
            f"latched on {trip.symbol or 'the book'} since {trip.triggered_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({trip.action_status}{', dry run' if trip.dry_run else ''})"
            for trip in trips
        )
        rows.append((step["at_pct"], step["do"], state or "armed"))
    trips = reverse("admin:risk_laddertrip_changelist") + f"?limit__id__exact={limit.pk}"
    return format_html(
        '{}<div><a href="{}">Every crossing of this ladder</a></div>',
        format_html_join("", "<div>{} %: {} \u2014 {}</div>", rows),
        trips,
    )


@admin.register(LadderTrip)
class LadderTripAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("triggered_at", "user", "limit_type", "symbol", "at_pct", "action", "action_status", "latched")
    list_filter = ("action", "action_status", "dry_run", "limit_type", "limit")
    search_fields = ("user__username", "symbol", "latch_key")
    list_select_related = ("user",)
    readonly_fields = [field.name for field in LadderTrip._meta.fields]

    @admin.display(boolean=True)
    def latched(self, obj):
        return obj.released_at is None
