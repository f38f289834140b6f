"""The kill switch in the officer's console (issue 15 item 3): the kill switches with
what each action did, and "Engage the kill switch", a form whose second step is a
confirmation page naming what is in scope (accounts, open positions, dry run) before
anything happens. It calls the same service as `POST /api/v1/risk/kill-switch`.
Imported by `risk.admin`."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from etrms.admin_tools import SERVICE_ERRORS, error_text
from etrms.roles import is_risk_officer
from risk.models import KillAction, KillScope, KillSwitch
from risk.services.config import global_config_get
from risk.services.kill_switch import kill_switch_engage


class KillSwitchForm(forms.Form):
    scope = forms.ChoiceField(choices=KillScope.choices)
    user = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"), required=False)
    exchange = forms.CharField(max_length=32, required=False, help_text="For the exchange scope, e.g. binanceusdm.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


def _in_scope(data: dict) -> tuple[int, int]:
    """(accounts, open positions) the kill switch would act on."""
    from accounts.selectors import account_list, position_list

    if data["scope"] == KillScope.USER and data["user"] is None:
        return 0, 0  # the service refuses it; nothing is in scope
    user_id = data["user"].pk if data["scope"] == KillScope.USER else None
    exchange = (data["exchange"] or "").strip().lower() if data["scope"] == KillScope.EXCHANGE else None
    accounts = account_list(user_id=user_id, exchange=exchange, enabled=True)
    return accounts.count(), position_list(accounts=accounts).count()


class KillActionInline(admin.TabularInline):
    model = KillAction
    fields = ("kind", "user", "exchange", "symbol", "side", "size", "status", "attempts", "client_order_id", "result")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
    list_display = ("created_at", "scope", "exchange", "user", "status", "dry_run", "requested_by", "reason")
    list_filter = ("scope", "status", "dry_run")
    list_select_related = ("user", "requested_by")
    readonly_fields = (
        "scope", "exchange", "user", "reason", "requested_by", "dry_run", "status", "created_at", "finished_at"
    )  # fmt: skip
    exclude = ("covered",)
    inlines = [KillActionInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        engage = path("engage/", self.admin_site.admin_view(self.engage_view), name="risk_killswitch_engage")
        return [engage, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:risk_killswitch_engage")

    def engage_view(self, request):
        """Step 1: the form. Step 2 (a valid POST): the confirmation page. Step 3 (a POST
        with `confirmed`): engage, then show the kill switch's report."""
        if not is_risk_officer(request.user):
            raise DjangoPermissionDenied
        form = KillSwitchForm(request.POST or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Engage the kill switch",
            "form": form,
            "dry_run": global_config_get().dry_run,
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if request.POST.get("confirmed") == "yes":
                try:
                    kill = kill_switch_engage(
                        actor=request.user,
                        scope=data["scope"],
                        user_id=data["user"].pk if data["user"] else None,
                        exchange=data["exchange"] or None,
                        reason=data["reason"],
                        confirm=True,
                    )
                except SERVICE_ERRORS as exc:
                    self.message_user(request, f"Kill switch not engaged: {error_text(exc)}", level=messages.ERROR)
                    return TemplateResponse(request, "admin/risk/killswitch/engage.html", context)
                level = messages.SUCCESS if kill.status in ("succeeded", "dry_run") else messages.ERROR
                self.message_user(request, f"Kill switch engaged: {kill.get_status_display()}.", level=level)
                return redirect(reverse("admin:risk_killswitch_change", args=[kill.pk]))
            accounts, positions = _in_scope(data)
            context.update({"confirming": True, "accounts": accounts, "positions": positions, "data": data})
        return TemplateResponse(request, "admin/risk/killswitch/engage.html", context)
