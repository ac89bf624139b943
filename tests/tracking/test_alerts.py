"""Alerts: one per episode, sent once to whom it concerns (a collaborator's address only about its own side), the
daily digest, the dashboard's conditions kept as alerts, the task cluster's absence, spam surges, and the dashboard
showing them until acknowledged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from calltrack.alerts_check import alerts_check_task, report_conditions_sync
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory
from tests.tracking.factories import CallFactory, SourceFactory, UserFactory
from tracking.models import Alert, AlertDelivery, AlertRecipient, Collaborator
from tracking.services.alerts import (
    CHECK_TASK,
    AlertSpec,
    alert_clear,
    alert_raise,
    alerts_digest_send,
    alerts_notify,
    cluster_check,
    spam_surge_check,
)
from tracking.services.monitors import source_pause

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def spec(key: str, **extra) -> AlertSpec:
    return AlertSpec(kind=extra.pop("kind", "fraud_monitor"), key=key, message=extra.pop("message", f"trouble {key}"), **extra)


def test_an_episode_is_raised_once_seen_again_while_open_and_a_new_one_after_it_clears():
    first = alert_raise(spec=spec("k"))
    assert first is not None
    assert alert_raise(spec=spec("k", message="trouble k, worse")) is None
    assert Alert.objects.get().message == "trouble k, worse"
    assert alert_clear(key="k") and not alert_clear(key="k")
    second = alert_raise(spec=spec("k"))
    assert second is not None and second.pk != first.pk
    assert Alert.objects.open().get().pk == second.pk


def test_a_collaborators_address_gets_only_the_alerts_about_its_own_source(mailoutbox):
    mine, other = SourceFactory(name="Mine"), SourceFactory(name="Other")
    collaborator = Collaborator.objects.create(user=UserFactory(), source=mine)
    AlertRecipient.objects.create(name="Publisher", email="pub@example.com", collaborator=collaborator)
    AlertRecipient.objects.create(name="Ops", email="ops@example.com")
    AlertRecipient.objects.create(name="Spam desk", email="spam@example.com", kinds=["spam_surge"])
    alert_raise(spec=spec("a", source_id=mine.pk))
    alert_raise(spec=spec("b", source_id=other.pk))
    alert_raise(spec=spec("c", kind="webhook_failing"))
    assert alerts_notify() == 3
    assert alerts_notify() == 0  # each alert is sent once
    sent = sorted((m.to[0], m.subject) for m in mailoutbox)
    assert [to for to, _ in sent] == ["ops@example.com"] * 3 + ["pub@example.com"]
    assert "trouble a" in [s for to, s in sent if to == "pub@example.com"][0]


def test_the_daily_digest_lists_the_days_alerts_once(mailoutbox):
    AlertRecipient.objects.create(name="Boss", email="boss@example.com", delivery=AlertDelivery.DIGEST)
    now = timezone.now()
    alert_raise(spec=spec("a"), at=now - timedelta(hours=3))
    alert_raise(spec=spec("b"), at=now - timedelta(hours=1))
    alert_raise(spec=spec("silent"), at=now - timedelta(hours=1), silent=True)  # a monitor that only pauses
    alerts_notify()
    assert mailoutbox == []  # digest recipients do not get each alert
    assert alerts_digest_send(at=now) == 1
    assert alerts_digest_send(at=now + timedelta(hours=1)) == 0  # not a day yet
    (mail,) = mailoutbox
    assert "2 alerts" in mail.subject and "trouble a" in mail.body and "trouble b" in mail.body and "silent" not in mail.body
    alert_raise(spec=spec("c"), at=now + timedelta(hours=2))
    assert alerts_digest_send(at=now + timedelta(hours=24)) == 1
    assert "trouble c" in mailoutbox[1].body and "trouble a" not in mailoutbox[1].body


def test_the_dashboards_pool_overflow_becomes_an_alert_about_the_pools_source_and_clears_with_it():
    source = SourceFactory()
    pool = NumberPoolFactory(name="Landing pages", source=source)
    session = NumberSessionFactory(pool=pool, tracking_number=None, is_overflow=True, started_at=timezone.now())
    (alert,) = report_conditions_sync()
    assert alert.kind == "pool_overflow" and alert.source_id == source.pk and "Landing pages" in alert.message
    assert alert.url == reverse("admin:numbers_numberpool_change", args=(pool.pk,))
    assert report_conditions_sync() == []  # the same episode
    session.delete()
    report_conditions_sync()
    assert Alert.objects.get().cleared_at is not None


def test_a_spam_surge_is_raised_over_the_usual_rate_and_cleared_after(settings):
    settings.CALLTRACK_SPAM_SURGE_MIN = 5
    now = timezone.now()
    for i in range(6):
        CallFactory(started_at=now - timedelta(minutes=10 + i), tags={"spam": "yes"})
    CallFactory(started_at=now - timedelta(minutes=5), tags={"spam": "no"})
    alert = spam_surge_check(at=now)
    assert alert is not None and "6 calls scored as spam" in alert.message
    assert spam_surge_check(at=now + timedelta(hours=2)) is None
    assert Alert.objects.get().cleared_at is not None


def test_the_dashboard_says_the_task_cluster_is_down_once_and_the_next_check_clears_it(mailoutbox):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    AlertRecipient.objects.create(name="Ops", email="ops@example.com")
    assert cluster_check() is None  # no schedule installed: nothing to say
    Schedule.objects.create(name="check", func=CHECK_TASK, schedule_type="I", minutes=5, next_run=timezone.now() - timedelta(hours=1))
    client = login(boss)
    page = client.get(reverse("admin:index"))
    assert [a["kind"] for a in page.context["stored_alerts"]] == ["cluster_down"]
    client.get(reverse("admin:index"))
    assert len(mailoutbox) == 1 and "task cluster is not running" in mailoutbox[0].subject
    alerts_check_task()  # the cluster ran the check: the episode ends
    assert Alert.objects.get().cleared_at is not None


def test_the_dashboard_shows_alerts_until_acknowledged_and_the_pause_with_the_gate():
    mine, other = SourceFactory(name="Mine"), SourceFactory(name="Other")
    pool = NumberPoolFactory(name="Landing pages", source=mine)
    NumberSessionFactory(pool=pool, tracking_number=None, is_overflow=True, started_at=timezone.now())
    (overflow,) = report_conditions_sync()
    mine_alert = alert_raise(spec=spec("m", source_id=mine.pk, message="Short calls: Mine: short 40%"))
    alert_raise(spec=spec("o", source_id=other.pk, message="Short calls: Other"))
    source_pause(source=mine, reason="Short calls: short 40%")
    boss = login(UserFactory(username="boss", is_staff=True, is_superuser=True))

    page = boss.get(reverse("admin:index"))
    shown = {a["id"] for a in page.context["stored_alerts"]}
    assert shown == set(Alert.objects.values_list("pk", flat=True))
    # The pool's flag is shown once: as the stored alert, not again as the period's flag.
    assert [a for a in page.context["alerts"] if a["kind"] == "pool_overflow"] == []
    assert [p["name"] for p in page.context["paused_sources"]] == ["Mine"]
    html = page.content.decode()
    assert f'data-ack="{mine_alert.pk}"' in html and 'data-paused="Mine"' in html

    response = boss.post(reverse("admin:tracking_alert_acknowledge", args=(mine_alert.pk,)), {"next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = boss.get(reverse("admin:index"))
    assert mine_alert.pk not in {a["id"] for a in page.context["stored_alerts"]}
    assert overflow.pk in {a["id"] for a in page.context["stored_alerts"]}

    # A source's collaborator: its own alerts and pause, no ack button, nothing about the other source.
    user = UserFactory(username="pub", is_staff=True)
    Collaborator.objects.create(user=user, source=other)
    page = login(user).get(reverse("admin:index"))
    assert [a["message"] for a in page.context["stored_alerts"]] == ["Short calls: Other"]
    assert page.context["paused_sources"] == [] and "data-ack" not in page.content.decode()
    assert login(user).post(reverse("admin:tracking_alert_acknowledge", args=(mine_alert.pk,))).status_code == 403


def test_the_admin_resumes_a_paused_source_with_its_action_and_refuses_a_viewer():
    from tests.api.conftest import grant

    source = SourceFactory(name="Mine")
    source_pause(source=source, reason="by hand")
    viewer = UserFactory(username="viewer", is_staff=True)
    grant(viewer, "tracking.view_source")
    url = reverse("admin:tracking_source_changelist")
    assert login(viewer).post(url, {"action": "resume_sources", "_selected_action": [source.pk]}).status_code == 403
    boss = login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    response = boss.post(url, {"action": "resume_sources", "_selected_action": [source.pk]})
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.paused_at is None and source.paused_reason is None
