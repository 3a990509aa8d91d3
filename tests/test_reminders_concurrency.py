"""Sent once, never lost: two sweepers at once (threads and processes), and sweeps that die midway.

Runs on the file SQLite of the test session, and on PostgreSQL when TEST_DATABASE_URL points there.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time as clock
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from coop.extensions import db
from coop.mail import DeliveryResult
from coop.reminders.models import Delivery, DeliveryChannel, DeliveryStatus, Notification
from tests.fixtures.reminders import local

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-03-17T09:00"


@pytest.fixture
def app_config(app_config, smtp_sink):
    return {**app_config, **smtp_sink.config}


@pytest.fixture
def busy_pairing(reminder_world, reminder_activity, set_prefs, make_user):
    """Five planned activities three days out, each liaison wanting immediate e-mail, plus more liaisons,
    so a sweep has 5 × 4 notices and e-mails to share out (REMINDER_IMMEDIATE_MAX raised: one mail each)."""
    w = reminder_world
    extra_x = make_user("liaison", org=w.x, display_name="刘洋", email="liuyang@example.cn")
    extra_y = make_user("liaison", org=w.y, display_name="陈静", email="chenjing@example.cn")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1), liaisons={w.x: [w.lx, extra_x], w.y: [w.ly, extra_y]})
    for person in (w.lx, w.ly, extra_x, extra_y):
        set_prefs(person, mode="immediate")
    for i in range(5):
        reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", title=f"活动{i + 1}")
    db.session.commit()
    return w


def expected_keys():
    return set(db.session.execute(sa.select(Notification.dedupe_key)).scalars())


def assert_each_sent_once(smtp_sink, total):
    db.session.expire_all()
    rows = db.session.execute(sa.select(Delivery).where(Delivery.channel == DeliveryChannel.email)).scalars().all()
    assert len(rows) == total
    assert all(r.status is DeliveryStatus.sent for r in rows), [(r.key, r.status) for r in rows]
    received = smtp_sink.received()
    assert len(received) == total
    # One e-mail per (recipient, subject): no duplicate, none missing.
    assert len({(str(m["To"]), str(m["Subject"])) for m in received}) == total


def test_two_threaded_sweepers_share_the_work(app, busy_pairing, smtp_sink, monkeypatch):
    from coop.reminders import delivery
    from coop.reminders.sweep import run_sweep

    app.config["REMINDER_IMMEDIATE_MAX"] = 100
    real_send = delivery.send_messages

    def slow_send(settings, messages):
        clock.sleep(0.2)  # widen the window in which the other sweeper could grab the same rows
        return real_send(settings, messages)

    monkeypatch.setattr(delivery, "send_messages", slow_send)
    db.session.commit()
    db.session.close()  # the test's own session must hold no lock while the sweepers run
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweeper():
        try:
            with app.app_context():
                barrier.wait()
                results.append(run_sweep(local(NOW)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    notices = [n.key for r in results for n in r.notices]
    assert len(notices) == len(set(notices)) == 20
    assert set(notices) == expected_keys()
    sent_keys = [k for r in results for e in r.emails for k in e.keys]
    assert sorted(sent_keys) == sorted(notices)  # every notice e-mailed, by exactly one of the two
    assert_each_sent_once(smtp_sink, 20)


def _cli_env(app, tmp_path) -> dict:
    env = dict(os.environ)
    env.update({
        "COOP_DATABASE_URL": app.config["DATABASE_URL"],
        "COOP_SECRET_KEY": app.config["SECRET_KEY"],
        "COOP_BASE_URL": app.config["BASE_URL"],
        "COOP_MAIL_SERVER": app.config["MAIL_SERVER"],
        "COOP_MAIL_PORT": str(app.config["MAIL_PORT"]),
        "COOP_INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONWARNINGS": "error",
    })
    env.pop("DATABASE_URL", None)
    return env


def test_two_sweeper_processes_via_the_cli(app, busy_pairing, smtp_sink, tmp_path):
    db.session.commit()
    db.session.close()
    env = _cli_env(app, tmp_path)
    # Tell both processes to send one e-mail per notice.
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "config.py").write_text("REMINDER_IMMEDIATE_MAX = 100\n")
    cmd = [sys.executable, "-m", "flask", "--app", "app", "reminders", "sweep", "--now", NOW]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    lines = [line for out, _err in outputs for line in out.splitlines() if line.startswith("2026-03-17 09:00")]
    in_app = [line for line in lines if "  站内  " in line]
    mails = [line for line in lines if "  邮件  " in line]
    assert len(in_app) == 20 and len(mails) == 20
    assert len(set(in_app)) == 20 and len(set(mails)) == 20
    assert any("张伟 <zhangwei@example.cn>  activity_upcoming  【党建共建】活动即将开展：活动1" in line for line in mails)
    assert_each_sent_once(smtp_sink, 20)


def test_crash_after_commit_before_sending_is_picked_up_after_the_lease(app, busy_pairing, smtp_sink, monkeypatch):
    from coop.reminders import delivery
    from coop.reminders.sweep import run_sweep

    app.config["REMINDER_IMMEDIATE_MAX"] = 100

    def crash(settings, messages):
        raise RuntimeError("进程在发送前崩溃")

    monkeypatch.setattr(delivery, "send_messages", crash)
    with pytest.raises(RuntimeError):
        run_sweep(local(NOW))
    monkeypatch.undo()
    db.session.expire_all()
    rows = db.session.execute(sa.select(Delivery).where(Delivery.channel == DeliveryChannel.email)).scalars().all()
    assert len(rows) == 20 and all(r.status is DeliveryStatus.pending and r.claimed_at is not None for r in rows)
    assert smtp_sink.received() == []
    # Within the lease the rows still belong to the dead sweeper: nobody sends them twice.
    assert run_sweep(local("2026-03-17T09:05")).emails == []
    # After it (10 minutes), the next sweep sends every one of them, once.
    later = run_sweep(local("2026-03-17T09:15"))
    assert len(later.emails_sent) == 20 and later.notices == []
    assert run_sweep(local("2026-03-17T09:30")).emails == []
    assert_each_sent_once(smtp_sink, 20)


def test_crash_before_claiming_leaves_rows_for_the_next_sweep(app, busy_pairing, smtp_sink, monkeypatch):
    from coop.reminders import delivery
    from coop.reminders.sweep import run_sweep

    app.config["REMINDER_IMMEDIATE_MAX"] = 100

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. the operator pressed Ctrl-C right after the notices were committed

    monkeypatch.setattr(delivery, "_claim", crash)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(local(NOW))
    monkeypatch.undo()
    assert len(expected_keys()) == 20  # the notices were committed before the crash
    again = run_sweep(local(NOW))  # same minute: nothing is claimed, so nothing waits for a lease
    assert again.notices == [] and len(again.emails_sent) == 20
    assert_each_sent_once(smtp_sink, 20)


CHILD = textwrap.dedent("""
    import os, sys, time
    from datetime import datetime
    from app import create_app
    from coop.reminders import delivery
    from coop.reminders.sweep import run_sweep

    app = create_app({"DATABASE_URL": os.environ["COOP_DATABASE_URL"], "REMINDER_IMMEDIATE_MAX": 100},
                     instance_path=os.environ["COOP_INSTANCE_PATH"])

    def hang(settings, messages):
        with open(sys.argv[1], "w") as fh:
            fh.write(str(len(messages)))
        time.sleep(600)  # killed here: after the claim was committed, before any e-mail left

    delivery.send_messages = hang
    with app.app_context():
        run_sweep(datetime.fromisoformat(sys.argv[2]))
""")


def test_sweeper_killed_mid_send_is_recovered_once(app, busy_pairing, smtp_sink, tmp_path):
    from coop.reminders.sweep import run_sweep

    app.config["REMINDER_IMMEDIATE_MAX"] = 100
    db.session.commit()
    db.session.close()
    ready = tmp_path / "ready"
    env = _cli_env(app, tmp_path)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ready), local(NOW).isoformat()], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = clock.monotonic() + 60
        while not ready.exists() and clock.monotonic() < deadline and child.poll() is None:
            clock.sleep(0.05)
        assert ready.exists(), child.communicate(timeout=5)
        assert ready.read_text() == "20"
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert smtp_sink.received() == []
    assert run_sweep(local("2026-03-17T09:05")).emails == []  # lease still running
    recovered = run_sweep(local("2026-03-17T09:15"))
    assert len(recovered.emails_sent) == 20
    assert run_sweep(local("2026-03-17T09:30")).emails == []
    assert_each_sent_once(smtp_sink, 20)
    attempts = set(db.session.execute(sa.select(Delivery.attempts).where(Delivery.channel == DeliveryChannel.email)).scalars())
    assert attempts == {2}


def test_lost_claim_is_not_overwritten_by_the_slow_sender(app, busy_pairing, smtp_sink, monkeypatch):
    """A sender slower than the lease finds its rows taken over: it must not mark them a second time."""
    from coop.reminders import delivery
    from coop.reminders.sweep import run_sweep

    app.config["REMINDER_IMMEDIATE_MAX"] = 100
    real_send = delivery.send_messages
    took_over = []

    def slow_then_overtaken(settings, messages):
        if not took_over:
            took_over.append(True)
            # While this sender "hangs", another sweep after the lease takes every row and sends it.
            monkeypatch.setattr(delivery, "send_messages", real_send)
            with app.app_context():
                other = run_sweep(local("2026-03-17T09:20"))
            assert len(other.emails_sent) == 20
            monkeypatch.setattr(delivery, "send_messages", slow_then_overtaken)
        return [DeliveryResult(str(m["Message-ID"] or ""), (), False, "超时") for m in messages]

    monkeypatch.setattr(delivery, "send_messages", slow_then_overtaken)
    run_sweep(local(NOW))
    db.session.expire_all()
    # The slow sender's failure report did not reset rows the other sender owns and has sent.
    assert_each_sent_once(smtp_sink, 20)
