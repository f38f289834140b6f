"""What every app's admin shares (STYLE §3): service errors become `message_user` lines,
actions run a service per selected row, read-only admins for rows only code writes, the
enable/disable pair of actions, and decimals shown as people write them.

A service raises the project's exceptions (`etrms.errors`) or Django's ValidationError;
the admin never shows a traceback for either.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.http import HttpResponseRedirect

from etrms.errors import ApplicationError
from etrms.formatting import decimal_human, value_plain

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


class NoAddOrDeleteAdminMixin:
    """Rows the system creates and officers act on (alerts, trips, the configuration
    singleton): changed through the admin's forms and actions, never added or deleted
    by hand (old rows go by the `cleanup` job, where any do)."""

    def has_add_permission(self, request, obj=None):
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


class PlainDecimalInput(forms.NumberInput):
    """A decimal input showing the value as typed (`15`, not `15.000000000000`)."""

    def format_value(self, value):
        return super().format_value(value_plain(value))


class HumanDecimalsMixin:
    """Decimal fields as people write them (`etrms.formatting.decimal_human`: `250,000`,
    `0.5`) in list columns and read-only fields, and plainly (`250000`) in inputs, where
    Django shows every stored place. Columns stay sortable; editable ones (list_editable,
    the change form) keep their input. The admin site adds it to every model admin."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.DecimalField):
            kwargs.setdefault("widget", PlainDecimalInput)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def _decimal_display(self, name):
        """The display callable standing for decimal field `name`, or `name` itself."""
        if not isinstance(name, str):
            return name
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return name
        if not isinstance(field, models.DecimalField):
            return name
        cache = self.__dict__.setdefault("_decimal_displays", {})
        if name not in cache:
            empty = self.get_empty_value_display()

            @admin.display(description=field.verbose_name, ordering=name)
            def display(obj):
                value = getattr(obj, name)
                return empty if value is None else decimal_human(value)

            display.__name__ = name  # the column's CSS class and help text stay the field's
            display.decimal_field = name
            cache[name] = display
        return cache[name]

    def get_list_display(self, request):
        kept = {*self.list_editable, *(self.list_display_links or ())}
        return [name if name in kept else self._decimal_display(name) for name in super().get_list_display(request)]

    def get_readonly_fields(self, request, obj=None):
        return [self._decimal_display(name) for name in super().get_readonly_fields(request, obj)]

    def get_exclude(self, request, obj=None):
        """The form leaves out the decimals shown read-only through their display (Django
        leaves out readonly_fields by name, and these are callables now)."""
        excluded = super().get_exclude(request, obj)
        shown = [f.decimal_field for f in self.get_readonly_fields(request, obj) if hasattr(f, "decimal_field")]
        if not shown:
            return excluded
        if excluded is None:  # Django then falls back to the form's own Meta.exclude
            excluded = getattr(getattr(self.form, "_meta", None), "exclude", None)
        return [*(excluded or ()), *shown]

    def get_inlines(self, request, obj):
        return [with_human_decimals(inline) for inline in super().get_inlines(request, obj)]

    def get_fieldsets(self, request, obj=None):
        """Read-only decimals (all of them on a view-only page) as their display."""
        fieldsets = super().get_fieldsets(request, obj)
        view_only = obj is not None and not self.has_change_permission(request, obj)
        readonly = {getattr(f, "__name__", f) for f in self.get_readonly_fields(request, obj)}
        shown = {
            name for name in flatten_fieldsets(fieldsets) if isinstance(name, str) and (view_only or name in readonly)
        }
        return [
            (title, {**options, "fields": _replace(options["fields"], shown, self._decimal_display)})
            for title, options in fieldsets
        ]


def filterset_list_filter(filterset_class, name: str) -> type[admin.SimpleListFilter]:
    """An admin sidebar filter made from the choice filter `name` of a list's FilterSet:
    the admin and the API offer the same choices and filter the same way (as NetBox
    shares its FilterSets between API and UI)."""
    declared = filterset_class.base_filters[name]

    class FilterSetListFilter(admin.SimpleListFilter):
        title = str(declared.label or name.replace("_", " "))
        parameter_name = name

        def lookups(self, request, model_admin):
            return declared.extra["choices"]

        def queryset(self, request, queryset):
            if self.value() is None:
                return queryset
            return filterset_class(data={name: self.value()}, queryset=queryset).qs

    FilterSetListFilter.__name__ = f"{filterset_class.__name__}_{name}"
    return FilterSetListFilter


def with_human_decimals(admin_class: type) -> type:
    """`admin_class` with HumanDecimalsMixin in front (itself when it has it)."""
    if issubclass(admin_class, HumanDecimalsMixin):
        return admin_class
    return type(admin_class.__name__, (HumanDecimalsMixin, admin_class), {"__module__": admin_class.__module__})


def _replace(fields, names: set, display):
    """`fields` of a fieldset (names, or tuples of names on one line) with `names` shown
    through `display`."""
    return [
        tuple(display(n) if n in names else n for n in item)
        if isinstance(item, (list, tuple))
        else (display(item) if item in names else item)
        for item in fields
    ]
