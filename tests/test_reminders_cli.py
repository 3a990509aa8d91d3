"""The hand-run sweep command, the scheduler job and the demo step."""
from __future__ import annotations

import logging
from datetime import date, timedelta

import sqlalchemy as sa

from coop.extensions import db
from coop.reminders.models import Notification, NotificationPreference
from tests.fixtures.reminders import SHANGHAI


def test_cli_sweep_prints_each_delivery(reminder_world, reminder_activity, set_prefs, app):
    w = reminder_world
    set_prefs(w.lx, mode="immediate")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", title="主题党日")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reminders", "sweep", "--now", "2026-03-17T09:00"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "2026-03-17 09:00  站内  张伟  activity_upcoming  活动即将开展：主题党日" in lines
    assert "2026-03-17 09:00  站内  孙浩  activity_upcoming  活动即将开展：主题党日" in lines
    assert "2026-03-17 09:00  邮件  张伟 <zhangwei@example.cn>  activity_upcoming  【党建共建】活动即将开展：主题党日" in lines
    assert lines[-1] == "共 2 条站内通知，1 封邮件。"
    again = runner.invoke(args=["reminders", "sweep", "--now", "2026-03-17T09:00"])
    assert again.output.strip() == "共 0 条站内通知，0 封邮件。"


def test_cli_rejects_a_bad_time(app):
    result = app.test_cli_runner().invoke(args=["reminders", "sweep", "--now", "明天"])
    assert result.exit_code != 0 and "请使用 ISO 格式" in result.output


def test_sweep_job_runs_at_the_real_time_and_logs(reminder_world, reminder_activity, app, caplog):
    from datetime import datetime

    from coop.reminders.jobs import sweep_job

    w = reminder_world
    today = datetime.now(SHANGHAI).date()
    agreement = w.make(commitments={}, starts_on=today - timedelta(days=10), ends_on=today + timedelta(days=300))
    reminder_activity(agreement, w.x, today + timedelta(days=2), status="planned")
    db.session.commit()
    with caplog.at_level(logging.INFO, logger="coop.reminders.jobs"):
        sweep_job(app)
    assert "reminder sweep: 2 条站内通知" in caplog.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2


def test_sweep_job_survives_a_failing_sweep(app, monkeypatch, caplog):
    from coop.reminders import jobs, sweep

    def broken(now=None):
        raise RuntimeError("数据库不可用")

    monkeypatch.setattr(sweep, "run_sweep", broken)
    with caplog.at_level(logging.ERROR, logger="coop.reminders.jobs"):
        jobs.sweep_job(app)  # must not raise into the scheduler
    assert "reminder sweep failed" in caplog.text


def test_demo_step_is_idempotent(reminder_world, make_user, app):
    from coop.reminders.demo import seed_demo_step

    w = reminder_world
    users = {"ops_lly": w.lx, "sales_lly": w.ly}
    messages = []
    seed_demo_step({}, users, messages.append)
    seed_demo_step({}, users, messages.append)
    assert db.session.get(NotificationPreference, w.lx.id).email_mode.value == "immediate"
    assert db.session.get(NotificationPreference, w.ly.id).email_mode.value == "weekly"
    assert len(messages) == 2 and all(m.startswith("提醒：") for m in messages)
