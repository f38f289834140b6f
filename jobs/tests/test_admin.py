"""The jobs admin for a risk officer who is not a superuser."""

import pytest

from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_browser(client, officer):
    assert not officer.is_superuser
    client.force_login(officer)
    return client


def test_officer_filters_jobs_by_status_priority_and_dead_letter(officer_browser, trader):
    Job.objects.create(name="ping", user=trader, status="failed", dead_lettered=True, priority="high")
    Job.objects.create(name="ping", user=trader, status="pending", priority="low")
    page = officer_browser.get("/admin/jobs/job/?status__exact=failed&priority=high&dead_lettered__exact=1")
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1


def test_retry_and_cancel_actions_call_the_services(officer_browser, trader):
    dead = Job.objects.create(name="ping", user=trader, status="failed", dead_lettered=True, retry_count=3)
    waiting = Job.objects.create(name="ping", user=trader, status="pending")
    done = Job.objects.create(name="ping", user=trader, status="completed")
    officer_browser.post(
        "/admin/jobs/job/", {"action": "retry_from_dead_letter", "_selected_action": [str(dead.pk)]}, follow=True
    )
    dead.refresh_from_db()
    assert (dead.status, dead.dead_lettered, dead.retry_count) == ("pending", False, 0)

    response = officer_browser.post(
        "/admin/jobs/job/", {"action": "cancel", "_selected_action": [str(waiting.pk), str(done.pk)]}, follow=True
    )
    waiting.refresh_from_db()
    done.refresh_from_db()
    assert waiting.status == "cancelled"
    assert done.status == "completed"
    messages = [str(message) for message in response.context["messages"]]
    assert any("only pending, scheduled or retrying" in message for message in messages)


def test_officer_sees_scheduled_tasks_in_the_admin(officer_browser):
    from jobs.scheduling import scheduled_task_upsert

    scheduled_task_upsert(name="every-minute", job_name="ping", interval_seconds=60)
    page = officer_browser.get("/admin/django_celery_beat/periodictask/")
    assert page.status_code == 200
    assert b"every-minute" in page.content


def test_a_trader_cannot_enter_the_admin(client, trader):
    client.force_login(trader)
    response = client.get("/admin/jobs/job/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_admin_carries_the_console_name(officer_browser):
    assert b"ETRMS risk console" in officer_browser.get("/admin/").content
