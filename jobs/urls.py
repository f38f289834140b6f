from django.urls import path

from jobs import api

urlpatterns = [
    path("jobs/health", api.HealthApi.as_view()),
    path("jobs/stats", api.StatsApi.as_view()),
    path("jobs/handlers", api.HandlersApi.as_view()),
    path("jobs/enqueue", api.EnqueueApi.as_view()),
    path("jobs/job/<uuid:job_id>", api.JobDetailApi.as_view()),
    path("jobs/job/<uuid:job_id>/result", api.JobResultApi.as_view()),
    path("jobs/job/<uuid:job_id>/cancel", api.JobCancelApi.as_view()),
    path("jobs/pending", api.PendingApi.as_view()),
    path("jobs/queue/stats", api.QueueStatsApi.as_view()),
    path("jobs/workers/stats", api.WorkerStatsApi.as_view()),
    path("jobs/scheduler/stats", api.SchedulerStatsApi.as_view()),
    path("jobs/scheduled", api.ScheduledListApi.as_view()),
    path("jobs/scheduled/register", api.ScheduledRegisterApi.as_view()),
    path("jobs/scheduled/<str:task_name>", api.ScheduledItemApi.as_view()),
    path("jobs/scheduled/<str:task_name>/enable", api.ScheduledEnableApi.as_view()),
    path("jobs/scheduled/<str:task_name>/disable", api.ScheduledDisableApi.as_view()),
    path("jobs/scheduled/<str:task_name>/run", api.ScheduledRunApi.as_view()),
    path("jobs/dlq", api.DeadLetterApi.as_view()),
    path("jobs/dlq/<uuid:job_id>/retry", api.DeadLetterRetryApi.as_view()),
]
