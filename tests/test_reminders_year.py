"""A year in the life of one pairing, swept twice a day with an injected clock.

The agreement is sent for signing in December 2025, runs through 2026 with activities logged, confirmed
late or on time, a plan cancelled and a liaison named mid-year; the test asserts exactly which reminder
each person gets and when — nothing more, nothing twice — and that each one is e-mailed exactly once.
"""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from agreements.models import AgreementLiaison, AgreementStatus, VersionState
from coop.activities.models import ActivityStatus
from coop.auth.models import User
from coop.extensions import db
from coop.reminders.models import Delivery, DeliveryChannel, DeliveryStatus, Notification
from tests.fixtures.reminders import SHANGHAI, local


def test_a_year_of_one_agreement(reminder_world, reminder_activity, confirm_activity_rows, signing_version, sign_as,
                                 monthly_report_row, set_prefs, make_user, app):
    w = reminder_world
    cj = make_user(org=w.y, display_name="陈静", email="chenjing@example.cn")  # named later; no liaison role
    for person in (w.lx, w.ly, w.sx, w.sy, w.reviewer, cj):
        set_prefs(person, mode="immediate")
    agreement = w.make(status="draft", commitments={"study": 4, "event": 2})
    title = agreement.title
    acts: dict[str, object] = {}

    # --- what happens, when (local time) ---------------------------------------------------------------
    def send_for_signing():
        acts["version"] = signing_version(agreement, local("2025-12-20T10:00"))

    def x_signs():
        sign_as(acts["version"], w.x, w.sx, local("2025-12-22T15:00"))

    def y_signs_and_it_takes_effect():
        sign_as(acts["version"], w.y, w.sy, local("2025-12-30T11:00"))
        acts["version"].state = VersionState.signed
        acts["version"].completed_at = local("2025-12-30T11:00")
        agreement.status = AgreementStatus.active
        agreement.activated_at = local("2025-12-30T11:00")
        db.session.commit()

    def log(key, organizer, held_on, when, **kw):
        def run():
            acts[key] = reminder_activity(agreement, organizer, held_on, requested_at=local(when), **kw)
        return run

    def confirm(key, when):
        return lambda: confirm_activity_rows(acts[key], local(when))

    def mark_held(key):
        def run():
            acts[key].status = ActivityStatus.held
            db.session.commit()
        return run

    def withdraw(key):
        def run():
            acts[key].status = ActivityStatus.withdrawn
            db.session.commit()
        return run

    def name_y_liaison():
        db.session.add(AgreementLiaison(agreement_id=agreement.id, organization_id=w.y.id, user_id=cj.id))
        db.session.commit()

    events = [
        ("2025-12-20T10:00", send_for_signing),
        ("2025-12-22T15:00", x_signs),
        ("2025-12-30T11:00", y_signs_and_it_takes_effect),
        ("2026-02-10T20:00", log("feb_study", w.x, date(2026, 2, 10), "2026-02-10T20:00", title="二月党员联学")),
        ("2026-03-02T10:00", confirm("feb_study", "2026-03-02T10:00")),
        ("2026-03-10T10:00", log("party_day", w.y, date(2026, 3, 20), "2026-03-10T10:00", status="planned",
                                 category="event", title="主题党日")),
        ("2026-03-20T18:00", mark_held("party_day")),
        ("2026-03-21T10:00", confirm("party_day", "2026-03-21T10:00")),
        ("2026-05-15T20:00", log("may_study", w.x, date(2026, 5, 15), "2026-05-15T20:00", title="五月党员联学")),
        ("2026-05-16T09:30", confirm("may_study", "2026-05-16T09:30")),
        ("2026-06-01T10:00", name_y_liaison),
        ("2026-07-20T20:00", log("volunteers", w.y, date(2026, 7, 20), "2026-07-20T20:00", category="event", title="志愿服务")),
        ("2026-07-21T10:00", confirm("volunteers", "2026-07-21T10:00")),
        ("2026-09-01T20:00", log("sep_study", w.x, date(2026, 9, 1), "2026-09-01T20:00", title="九月党员联学")),
        ("2026-09-02T10:00", confirm("sep_study", "2026-09-02T10:00")),
        ("2026-11-10T10:00", log("nov_study", w.x, date(2026, 11, 19), "2026-11-10T10:00", status="planned", title="书记送课上门")),
        ("2026-11-18T10:00", withdraw("nov_study")),
    ]
    # The monthly report of each month is archived at 02:00 on the 1st of the next.
    for month in range(1, 12):
        events.append((f"2026-{month + 1:02d}-01T02:00",
                       lambda month=month: monthly_report_row(agreement, 2026, month, local(f"2026-{month + 1:02d}-01T02:00"))))
    events.sort(key=lambda e: e[0])

    # --- run the year: sweeps at 09:00 and 21:00, the 09:00 one twice ------------------------------------
    from coop.reminders.sweep import run_sweep

    day = date(2025, 12, 20)
    pending = list(events)
    while day <= date(2026, 12, 31):
        for hour, repeats in (("09:00", 2), ("21:00", 1)):
            moment = f"{day.isoformat()}T{hour}"
            while pending and pending[0][0] <= moment:
                pending.pop(0)[1]()
            for attempt in range(repeats):
                result = run_sweep(local(moment))
                assert result.skipped_rules == {}
                if attempt:
                    assert result.notices == [] and result.emails == [], moment
        day += timedelta(days=1)
    assert pending == []

    # --- exactly these reminders, to these people, at these times -----------------------------------------
    both = lambda when, kind, y="孙浩": [(when, "张伟", kind), (when, y, kind)]  # noqa: E731
    expected = [
        ("2025-12-20 21:00", "李红梅", "signature_pending"),
        ("2025-12-20 21:00", "赵敏", "signature_pending"),
        ("2025-12-27 21:00", "赵敏", "signature_overdue"),  # Y still has not signed a week later
        *both("2026-01-31 09:00", "agreement_inactive"),  # 30 days without an activity
        *both("2026-02-01 09:00", "report_ready"),
        ("2026-02-13 21:00", "孙浩", "confirmation_pending"),  # X's entry of the 10th waits for Y
        ("2026-02-20 21:00", "赵敏", "confirmation_overdue"),  # … a week later, Y's secretary
        ("2026-02-27 21:00", "王立新", "confirmation_overdue"),  # … another week, the committee
        *both("2026-03-01 09:00", "report_ready"),
        *both("2026-03-12 09:00", "agreement_inactive"),  # 30 days after 10 February
        *both("2026-03-17 09:00", "activity_upcoming"),  # the 主题党日 on the 20th
        *both("2026-04-01 09:00", "report_ready"),
        *both("2026-04-19 09:00", "agreement_inactive"),  # 30 days after 20 March
        *both("2026-05-01 09:00", "report_ready"),
        *both("2026-06-01 09:00", "report_ready"),
        # From here Y's named liaison 陈静 replaces 孙浩, who only stood in while nobody was named; she
        # hears at once of what is still news (May's report, archived this morning).
        ("2026-06-01 21:00", "陈静", "report_ready"),
        *both("2026-06-14 09:00", "agreement_inactive", "陈静"),
        *both("2026-07-01 09:00", "report_ready", "陈静"),
        *both("2026-07-14 09:00", "agreement_inactive", "陈静"),  # 60 days after 15 May
        *both("2026-08-01 09:00", "report_ready", "陈静"),
        *both("2026-08-19 09:00", "agreement_inactive", "陈静"),
        *both("2026-09-01 09:00", "report_ready", "陈静"),
        *both("2026-10-01 09:00", "agreement_inactive", "陈静"),
        *both("2026-10-01 09:00", "report_ready", "陈静"),
        *both("2026-10-31 09:00", "agreement_inactive", "陈静"),
        *both("2026-11-01 09:00", "report_ready", "陈静"),
        *both("2026-11-16 09:00", "activity_upcoming", "陈静"),  # planned for the 19th, later cancelled
        *both("2026-11-30 09:00", "agreement_inactive", "陈静"),
        *both("2026-12-01 09:00", "agreement_expiring", "陈静"),
        ("2026-12-01 09:00", "李红梅", "agreement_expiring"),
        ("2026-12-01 09:00", "赵敏", "agreement_expiring"),
        *both("2026-12-01 09:00", "report_ready", "陈静"),
        *both("2026-12-24 09:00", "agreement_expiring", "陈静"),
        ("2026-12-24 09:00", "李红梅", "agreement_expiring"),
        ("2026-12-24 09:00", "赵敏", "agreement_expiring"),
        *both("2026-12-30 09:00", "agreement_inactive", "陈静"),
        *both("2026-12-31 09:00", "commitment_behind", "陈静"),  # 3 of 4 党员联学 on the last day
    ]
    rows = db.session.execute(sa.select(Notification).order_by(Notification.created_at, Notification.id)).scalars().all()
    names = dict(db.session.execute(sa.select(User.id, User.display_name)).all())
    actual = sorted(
        (f"{n.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}", names[n.user_id], n.kind.value) for n in rows
    )
    assert actual == sorted(expected)

    # A few texts as the people read them.
    def notice(kind, name, when):
        return next(n for n in rows if n.kind.value == kind and names[n.user_id] == name
                    and f"{n.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" == when)

    assert notice("signature_overdue", "赵敏", "2025-12-27 21:00").title == f"协议仍待签署（已7天）：{title}"
    assert notice("confirmation_overdue", "王立新", "2026-02-27 21:00").title == "营销服务党支部逾期未确认活动：二月党员联学"
    assert notice("agreement_inactive", "张伟", "2026-11-30 09:00").body.startswith(
        f"协议“{title}”自2026年9月1日以来已有90天没有开展共建活动。")
    assert notice("report_ready", "陈静", "2026-12-01 09:00").title == f"2026年11月报告已生成：{title}"
    behind = notice("commitment_behind", "张伟", "2026-12-31 09:00")
    assert behind.body.startswith(f"协议“{title}”约定党员联学今年完成4次，按进度截至2026年12月31日应完成4次，目前已确认3次")
    assert notice("signature_pending", "李红梅", "2025-12-20 21:00").mandatory

    # --- and each of them e-mailed exactly once, at once (everyone chose "immediately") --------------------
    mails = db.session.execute(sa.select(Delivery).where(Delivery.channel == DeliveryChannel.email)).scalars().all()
    assert sorted(m.key for m in mails) == sorted(n.dedupe_key for n in rows)
    assert all(m.status is DeliveryStatus.sent and m.attempts == 1 for m in mails)
    created = {n.dedupe_key: n.created_at for n in rows}
    assert all(m.sent_at == created[m.key] for m in mails)
