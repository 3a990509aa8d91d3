"""The demo step: realistic activities on the demo agreements, idempotent, harmless without agreements."""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from coop.activities.demo import seed_demo_step
from coop.activities.models import Activity, ActivityStatus, Attachment, ConfirmationState
from coop.extensions import db


def _demo(app):
    from coop import demo

    messages = []
    demo.seed_demo(echo=messages.append, domains=False)
    from coop.auth.models import User
    from coop.orgs.models import Organization

    orgs = {key: db.session.scalars(sa.select(Organization).where(Organization.name == name)).one()
            for key, name, *_ in demo.DEMO_ORGS}
    users = {u.username: u for u in db.session.scalars(sa.select(User))}
    return orgs, users


def test_demo_step_skips_without_agreements(app):
    orgs, users = _demo(app)
    said = []
    seed_demo_step(orgs, users, said.append)
    assert "跳过" in said[-1]
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0


def test_demo_step_fills_the_demo_agreements_once(app, make_agreement, frozen_today):
    frozen_today(date(2026, 11, 22))
    orgs, users = _demo(app)
    make_agreement(parties=[orgs["power_ops"], orgs["cdc"]], title="运维—疾控共建协议")
    make_agreement(parties=[orgs["power_sales"], orgs["community"]], title="营销—街道共建协议")
    make_agreement(parties=[orgs["log_fleet"], orgs["bank"]], title="车队—银行共建协议")
    said = []
    seed_demo_step(orgs, users, said.append)
    db.session.commit()
    activities = db.session.scalars(sa.select(Activity)).all()
    assert 25 <= len(activities) <= 36
    assert any(a.status is ActivityStatus.planned and a.held_on > date(2026, 11, 22) for a in activities)
    assert sum(a.confirmation is ConfirmationState.confirmed for a in activities) >= 15
    assert sum(a.confirmation is ConfirmationState.disputed for a in activities) == 1
    assert sum(a.status is ActivityStatus.withdrawn for a in activities) == 1
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) >= 5
    assert all(date(2026, 1, 1) <= a.held_on <= date(2026, 12, 31) for a in activities)
    seed_demo_step(orgs, users, said.append)  # again: nothing new
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == len(activities)
