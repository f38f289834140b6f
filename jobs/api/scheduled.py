"""Scheduled tasks: list, register, enable, disable, run now, unregister."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status

from etrms.api.pagination import PageQuery, page, query_validate
from etrms.api.permissions import IsRiskOfficer, ReadAnyWriteRiskOfficer
from etrms.api.responses import bare
from etrms.api.schema import string_in, time_zone_schema
from jobs.api.common import JobsApi, datetime_text, with_handler_variants
from jobs.models import JobPriority
from jobs.scheduling import (
    CRON_PATTERN,
    SCHEDULE_TYPES,
    next_run_of,
    schedule_type_of,
    scheduled_task_delete,
    scheduled_task_register,
    scheduled_task_run_now,
    scheduled_task_set_enabled,
    scheduled_task_spec,
)
from jobs.selectors import scheduled_tasks


class ScheduledTaskOutput(serializers.Serializer):
    name = serializers.CharField()
    job_name = serializers.CharField()
    schedule_type = serializers.ChoiceField(choices=SCHEDULE_TYPES)
    interval_seconds = serializers.IntegerField(allow_null=True)
    cron = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    run_at = serializers.DateTimeField(allow_null=True)
    args = serializers.JSONField()
    priority = serializers.CharField()
    enabled = serializers.BooleanField()
    last_run = serializers.DateTimeField(allow_null=True)
    next_run = serializers.DateTimeField(allow_null=True)
    run_count = serializers.IntegerField()


def scheduled_task_output(task) -> dict:
    spec = scheduled_task_spec(task)
    return {
        "name": task.name,
        "job_name": spec.get("job_name"),
        "schedule_type": schedule_type_of(task),
        "interval_seconds": task.interval.every if task.interval_id else None,
        "cron": (
            f"{task.crontab.minute} {task.crontab.hour} {task.crontab.day_of_month} "
            f"{task.crontab.month_of_year} {task.crontab.day_of_week}"
            if task.crontab_id
            else None
        ),
        "timezone": str(task.crontab.timezone) if task.crontab_id else "UTC",
        "run_at": serializers.DateTimeField().to_representation(task.clocked.clocked_time) if task.clocked_id else None,
        "args": spec.get("args", {}),
        "priority": spec.get("priority"),
        "enabled": task.enabled,
        "last_run": serializers.DateTimeField().to_representation(task.last_run_at) if task.last_run_at else None,
        "next_run": datetime_text(next_run_of(task)),
        "run_count": task.total_run_count,
    }


# What registering answers: the task's name, handler, schedule type, next run and state.
REGISTERED = inline_serializer(
    "ScheduledTaskRegistered",
    {
        "name": serializers.CharField(),
        "job_name": serializers.CharField(),
        "schedule_type": serializers.ChoiceField(choices=SCHEDULE_TYPES),
        "next_run": serializers.DateTimeField(allow_null=True),
        "enabled": serializers.BooleanField(),
    },
)


class ScheduledQuery(PageQuery):
    user_id = None  # scheduled tasks belong to the desk, not to a user


class ScheduledListApi(JobsApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    @extend_schema(
        parameters=[ScheduledQuery],
        responses=inline_serializer(
            "ScheduledTasks", {"count": serializers.IntegerField(), "tasks": ScheduledTaskOutput(many=True)}
        ),
    )
    def get(self, request):
        query = query_validate(ScheduledQuery, request)
        queryset = scheduled_tasks()
        tasks = page(queryset, limit=query["limit"], offset=query["offset"])
        return bare({"count": queryset.count(), "tasks": [scheduled_task_output(task) for task in tasks]})


class ScheduledRegisterApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    class ScheduledTaskInput(serializers.Serializer):
        name = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,150}$", max_length=150)
        job_name = serializers.CharField(max_length=64)
        schedule_type = serializers.ChoiceField(choices=SCHEDULE_TYPES)
        interval_seconds = serializers.IntegerField(min_value=1, max_value=366 * 86400, required=False)
        cron = serializers.CharField(max_length=100, required=False)
        timezone = serializers.CharField(max_length=63, required=False, default="UTC")
        run_at = serializers.DateTimeField(required=False)
        args = serializers.JSONField(required=False, default=dict)
        priority = serializers.ChoiceField(choices=JobPriority.choices, required=False)
        max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
        timeout = serializers.IntegerField(min_value=1, max_value=3600, required=False)
        enabled = serializers.BooleanField(required=False, default=True)

        # jobs.scheduling: each schedule type needs its own field (a run_at in the future).
        document_rules = {
            "oneOf": [
                {"properties": {"schedule_type": string_in("interval")}, "required": ["interval_seconds"]},
                {
                    "properties": {"schedule_type": string_in("crontab"), "cron": {"pattern": CRON_PATTERN}},
                    "required": ["cron"],
                },
                {"properties": {"schedule_type": string_in("one_off")}, "required": ["run_at"]},
            ],
            "allOf": [{"properties": {"timezone": time_zone_schema()}}],
        }

        def validate_timezone(self, value):
            import zoneinfo

            if value not in zoneinfo.available_timezones() and value != "UTC":
                raise serializers.ValidationError(f"Unknown time zone {value!r}.")
            return value

        def validate_run_at(self, value):
            if value <= timezone.now():
                raise serializers.ValidationError("Must be in the future.")
            return value

        def validate(self, attrs):
            from jobs.services.lifecycle import job_args_validate

            attrs["args"] = job_args_validate(name=attrs["job_name"], args=attrs["args"], field="job_name")
            return attrs

    @extend_schema(request=ScheduledTaskInput, responses=REGISTERED)
    def post(self, request):
        data = self.ScheduledTaskInput(data=request.data)
        data.is_valid(raise_exception=True)
        definition = dict(data.validated_data)
        definition["tz"] = definition.pop("timezone")
        task = scheduled_task_register(**definition)
        output = scheduled_task_output(task)
        return bare({key: output[key] for key in REGISTERED.fields})

    @extend_schema(exclude=True)  # documented as DELETE /jobs/scheduled/{task_name}
    def delete(self, request):
        """`register` is a valid task name: its item route is this one's path (the other
        routes of a task, `/enable`, `/disable`, `/run`, do not collide)."""
        return ScheduledItemApi().delete(request, task_name="register")


class ScheduledTaskInputSchema(OpenApiSerializerExtension):
    target_class = ScheduledRegisterApi.ScheduledTaskInput

    def map_serializer(self, auto_schema, direction):
        return with_handler_variants(auto_schema, self.target, direction, name_field="job_name")


class ScheduledItemApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(responses={204: None})
    def delete(self, request, task_name):
        scheduled_task_delete(name=task_name)
        return bare(None, status=status.HTTP_204_NO_CONTENT)


class ScheduledEnableApi(JobsApi):
    permission_classes = [IsRiskOfficer]
    enabled = True

    @extend_schema(request=None, responses=ScheduledTaskOutput)
    def post(self, request, task_name):
        return bare(scheduled_task_output(scheduled_task_set_enabled(name=task_name, enabled=self.enabled)))


class ScheduledDisableApi(ScheduledEnableApi):
    enabled = False


class ScheduledRunApi(JobsApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ScheduledRun",
            {
                "task_name": serializers.CharField(),
                "job_id": serializers.UUIDField(),
                "status": serializers.CharField(),
            },
        ),
    )
    def post(self, request, task_name):
        job = scheduled_task_run_now(name=task_name)
        return bare({"task_name": task_name, "job_id": str(job.id), "status": "triggered"})
