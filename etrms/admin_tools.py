"""What every app's admin shares (STYLE §3): service errors become `message_user` lines,
actions run a service per selected row, read-only admins for rows only code writes, and
the enable/disable pair of actions.

A service raises the project's exceptions (`etrms.errors`) or Django's ValidationError;
the admin never shows a traceback for either.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponseRedirect

from etrms.errors import ApplicationError

SERVICE_ERRORS = (ApplicationError, DjangoValidationError)


def error_text(exc: Exception) -> str:
    """One line for an officer: `field: message; ...` for field errors."""
    if isinstance(exc, DjangoValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def run_each(modeladmin, request, objects, service, *, done: str, level=messages.ERROR) -> int:
    """Call `service(obj)` for each object; report each failure and the count done."""
    count = 0
    for obj in objects:
        try:
            service(obj)
            count += 1
        except SERVICE_ERRORS as exc:
            modeladmin.message_user(request, f"{obj}: {error_text(exc)}", level=level)
    if count:
        modeladmin.message_user(request, f"{count} {done}.", level=messages.SUCCESS)
    return count


class ServiceAdminMixin:
    """save_model / delete_model call services; a service error raised there rolls the
    form's transaction back and comes back as an admin message on the same page (the
    form's own validation, model clean() included, has already run)."""

    def _changes(self, form, fields) -> dict:
        return {name: form.cleaned_data[name] for name in form.changed_data if name in fields}

    def _service_error(self, request, exc: Exception, what: str):
        self.message_user(request, f"Not {what}: {error_text(exc)}", level=messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except SERVICE_ERRORS as exc:
            return self._service_error(request, exc, "saved")

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except SERVICE_ERRORS as exc:
            return self._service_error(request, exc, "deleted")

    def delete_queryset(self, request, queryset):
        run_each(self, request, queryset, lambda obj: self.delete_model(request, obj), done="deleted")


class ReadOnlyAdminMixin:
    """Rows that only code writes (snapshots, history, events): listed and shown, never
    added, changed or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def enable_actions(noun: str, setter):
    """The "Enable selected <noun>s" / "Disable selected <noun>s" pair: `setter(request,
    obj, enabled)` calls the service; failures become messages."""

    @admin.action(description=f"Enable selected {noun}s")
    def enable(modeladmin, request, queryset):
        run_each(modeladmin, request, queryset, lambda obj: setter(request, obj, True), done=f"{noun}(s) enabled")

    @admin.action(description=f"Disable selected {noun}s")
    def disable(modeladmin, request, queryset):
        run_each(modeladmin, request, queryset, lambda obj: setter(request, obj, False), done=f"{noun}(s) disabled")

    return enable, disable
