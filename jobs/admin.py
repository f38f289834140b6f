"""Jobs in the admin: filter by status, priority and dead-letter; retry and cancel
actions call the same services as the API."""

from django.contrib import admin, messages

from etrms.admin_tools import SERVICE_ERRORS, error_text, filterset_list_filter
from jobs.filters import JobFilter
from jobs.models import Job
from jobs.services import dlq_retry, job_cancel


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "priority", "retry_count", "max_retries", "dead_lettered", "user", "created_at"]
    list_filter = ["status", filterset_list_filter(JobFilter, "priority"), "dead_lettered", "name"]
    search_fields = ["id", "name", "error", "scheduled_task", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    actions = ["retry_from_dead_letter", "cancel"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry selected jobs from the dead-letter queue", permissions=["change"])
    def retry_from_dead_letter(self, request, queryset):
        self._each(request, queryset.filter(dead_lettered=True), lambda job: dlq_retry(job_id=job.pk), "requeued")

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel(self, request, queryset):
        self._each(request, queryset, lambda job: job_cancel(job=job), "cancelled")

    def _each(self, request, queryset, operation, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                operation(job)
                done += 1
            except SERVICE_ERRORS as exc:
                self.message_user(request, f"{job}: {error_text(exc)}", messages.WARNING)
        self.message_user(request, f"{done} job(s) {verb}.", messages.SUCCESS if done else messages.WARNING)
