"""`POST /api/v1/jobs/enqueue {"jobs": [...]}` (SPEC §12, issue 14): up to 1,000 jobs,
each validated (its index in the error), all or nothing, the ids in the order given;
one INSERT, and one pipelined publish after commit that a real worker runs."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import wait_for
from etrms.testing import PrivateRedis, redis_clients_pointed_at
from jobs.api.jobs import MAX_BULK_JOBS
from jobs.models import Job, JobStatus


def bulk(client, jobs):
    return client.post("/api/v1/jobs/enqueue", {"jobs": jobs}, format="json")


@pytest.mark.django_db
def test_bulk_enqueue_answers_the_ids_in_order_with_one_insert(trader_client, trader):
    jobs = [
        {"name": "ping", "priority": "high"},
        {"name": "evaluate_risk", "args": {}, "priority": "low", "max_retries": 1},
        {"name": "ping", "delay_seconds": 600},
    ]
    with CaptureQueriesContext(connection) as queries:
        response = bulk(trader_client, jobs)
    assert response.status_code == 200, response.content
    answered = response.json()["jobs"]
    assert [item["status"] for item in answered] == ["enqueued", "enqueued", "scheduled"]
    rows = Job.objects.in_bulk([item["job_id"] for item in answered])
    in_order = [rows[uuid.UUID(item["job_id"])] for item in answered]
    assert [(job.name, job.priority) for job in in_order] == [
        ("ping", "high"),
        ("evaluate_risk", "low"),
        ("ping", "normal"),
    ]
    assert in_order[1].max_retries == 1 and in_order[1].args["user_id"] == str(trader.pk)
    assert {job.user_id for job in in_order} == {trader.pk}
    inserts = [query["sql"] for query in queries.captured_queries if query["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1


@pytest.mark.django_db
def test_one_bad_job_refuses_the_batch_and_names_its_index(trader_client):
    unknown = bulk(trader_client, [{"name": "ping"}, {"name": "no_such_handler"}])
    assert unknown.status_code == 400
    assert "jobs.1.name" in unknown.json()["errors"]

    bad_field = bulk(trader_client, [{"name": "ping"}, {"name": "ping"}, {"name": "ping", "timeout": 0}])
    assert bad_field.status_code == 400
    assert "jobs.2.timeout" in bad_field.json()["errors"]

    bad_args = bulk(trader_client, [{"name": "sleep", "args": {"seconds": 1}}])
    assert bad_args.status_code == 403  # officer-only handler, as one job

    officer_only = bulk(trader_client, [{"name": "ping"}, {"name": "ping", "priority": "critical"}])
    assert officer_only.status_code == 403
    assert officer_only.json()["message"].startswith("jobs[1]: ")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_bulk_enqueue_bounds(trader_client):
    assert bulk(trader_client, []).status_code == 400
    too_many = bulk(trader_client, [{"name": "ping"}] * (MAX_BULK_JOBS + 1))
    assert too_many.status_code == 400
    assert not Job.objects.exists()
    assert bulk(trader_client, [{"name": "ping"}] * MAX_BULK_JOBS).status_code == 200
    assert Job.objects.count() == MAX_BULK_JOBS


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_worker_runs_every_job_of_a_bulk_enqueue(celery_worker, trader_client):
    response = bulk(trader_client, [{"name": "ping"} for _ in range(20)])
    assert response.status_code == 200
    ids = [item["job_id"] for item in response.json()["jobs"]]
    wait_for(
        lambda: Job.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() == len(ids),
        timeout=60,
        message="the 20 jobs completed",
    )


@pytest.mark.django_db(transaction=True)
def test_broker_down_keeps_every_job_of_the_batch_for_the_supervisor(officer, settings):
    from jobs.services import jobs_enqueue

    server = PrivateRedis().start()
    try:
        with redis_clients_pointed_at(server.url, settings):
            server.stop()
            jobs = jobs_enqueue(user=officer, requests=[{"name": "ping"} for _ in range(5)])
            rows = Job.objects.filter(pk__in=[job.pk for job in jobs])
            assert rows.count() == 5
            # Not in the broker: `run_at` set on every pending row, which a supervisor publishes
            # (attempt 2). In a whole-suite run the session worker's supervisor (same database,
            # the run's Redis) may already have done so: one database, two brokers.
            assert all((job.status == JobStatus.PENDING and job.run_at is not None) or job.attempt >= 2 for job in rows)
    finally:
        server.close()
