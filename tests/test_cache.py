"""Memoised group-scale figures (coop.cache, issue 10): fast on repeat, never stale after a write.

The figures are recomputed whenever any process commits a write to data they depend on; these tests prove it
for writes through operations, through a second session (another process would do the same), and that
bookkeeping writes, rollbacks and a transaction's own uncommitted changes behave.
"""
from __future__ import annotations

import contextlib
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from coop import cache
from coop.activities.models import Activity
from coop.activities.operations import confirm_activity
from coop.extensions import db
from coop.reports import progress as pg


@pytest.fixture
def counted(pairing, make_activity):
    ag = pairing.agreement
    make_activity(pairing.la, ag, held_on=date(2026, 3, 12))
    return pairing


def _march(agreement):
    return pg.agreement_progress([agreement], date(2026, 3, 1), date(2026, 3, 31))[agreement.id]["study"]


def _fresh(agreement):
    """The same figure computed without any memo."""
    return pg._agreement_progress([agreement], [agreement.id], date(2026, 3, 1), date(2026, 3, 31))[agreement.id]["study"]


@contextlib.contextmanager
def _new_request(app):
    """What the next request does: a new transaction, which reads the generation again."""
    db.session.commit()
    yield
    db.session.commit()


def test_a_repeat_is_served_from_the_memo_and_equals_a_fresh_computation(app, counted):
    ag = counted.agreement
    first = _march(ag)
    hits = cache.stats["hits"]
    with _new_request(app):
        again = _march(db.session.get(type(ag), ag.id))
    assert cache.stats["hits"] == hits + 1
    assert again == first == _fresh(ag)
    assert (first.held, first.pending, first.confirmed) == (1, 1, 0)


def test_an_operation_that_writes_makes_the_next_request_recompute(app, counted, make_activity):
    ag = counted.agreement
    assert _march(ag).held == 1
    make_activity(counted.lb, ag, held_on=date(2026, 3, 20))
    with _new_request(app):
        assert _march(db.session.get(type(ag), ag.id)).held == 2
    activity = db.session.execute(sa.select(Activity).order_by(Activity.id)).scalars().first()
    confirm_activity(counted.lb, activity)
    db.session.commit()
    with _new_request(app):
        p = _march(db.session.get(type(ag), ag.id))
    assert (p.held, p.confirmed) == (2, 1)
    assert p == _fresh(ag)


def test_a_write_from_another_session_invalidates_this_process(app, counted):
    """Another process writes through its own connection: the generation it bumps is what we compare."""
    ag = counted.agreement
    assert _march(ag).held == 1
    db.session.commit()  # SQLite: one writer at a time
    with Session(db.engine) as other:
        other.execute(sa.update(Activity).values(held_on=date(2026, 4, 2)))
        other.commit()
    with _new_request(app):
        assert _march(db.session.get(type(ag), ag.id)).held == 0


def test_bookkeeping_writes_and_rollbacks_do_not_bump(app, counted):
    before = cache.current_generation()
    assert before is not None
    with _new_request(app):
        db.session.execute(sa.text("DELETE FROM login_throttles"))
        db.session.commit()
        db.session.execute(sa.update(Activity).values(title="不会保存"))
        db.session.rollback()
        assert cache.current_generation() == before
        # The rolled-back write left no flag behind on the pooled connection.
        db.session.execute(sa.text("DELETE FROM login_throttles"))
        db.session.commit()
        assert cache.current_generation() == before
        db.session.execute(sa.update(Activity).values(place="新地点"))
        db.session.commit()
        after = cache.current_generation()
    assert after[1] == before[1] and after[2] == before[2] + 1


def test_uncommitted_changes_of_the_own_transaction_are_never_memoised(app, counted):
    ag = counted.agreement
    assert _march(ag).held == 1
    with _new_request(app):
        db.session.execute(sa.update(Activity).values(held_on=date(2026, 5, 1)))
        assert _march(db.session.get(type(ag), ag.id)).held == 0  # sees its own write…
        db.session.rollback()
    with _new_request(app):
        assert _march(db.session.get(type(ag), ag.id)).held == 1  # …which was never stored in the memo


def test_a_wiped_database_starts_a_new_epoch(app, counted):
    ag = counted.agreement
    _march(ag)
    epoch = cache.current_generation()[1]
    with _new_request(app):
        db.session.execute(sa.delete(cache.DataGeneration))
        db.session.commit()
        assert cache.current_generation() is None  # no row: nothing is memoised
        db.session.execute(sa.update(Activity).values(place="别处"))
        db.session.commit()
        assert cache.current_generation()[1] != epoch


def test_cockpit_and_scores_follow_an_evaluation_and_a_new_activity(app, client, login, make_org, make_user,
                                                                    make_agreement, make_activity):
    """End to end through the screens: a reviewer's cockpit and scores change right after a write."""
    committee = make_org("测试党委", kind="committee", relation="group")
    a = make_org("甲支部", parent=committee)
    b = make_org("乙支部", parent=committee)
    la = make_user("liaison", org=a)
    reviewer = make_user("committee", org=committee)
    ag = make_agreement(parties=[a, b], liaisons={a: [la]}, commitments={"study": 4},
                        starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    login(client, reviewer)
    url = "/review/?period=2026"
    first = client.get(url).get_data(as_text=True)
    assert "年度累计0/4" in first
    act = make_activity(la, ag, held_on=date(2026, 2, 3))
    assert "本期开展1次" in client.get(url).get_data(as_text=True)
    scores_before = client.get("/review/scores?year=2026&quarter=").get_data(as_text=True)
    confirm_activity(make_user("liaison", org=b), db.session.get(Activity, act.id))
    db.session.commit()
    page = client.get(url).get_data(as_text=True)
    assert "年度累计1/4" in page
    assert client.get("/review/scores?year=2026&quarter=").get_data(as_text=True) != scores_before


def test_report_data_follows_a_write(app, pairing, make_activity):
    """The monthly report figures (screen, JSON and PDF share them) are memoised too, and recomputed after a write."""
    from coop.reports import queries as report_queries

    def held(as_of=date(2026, 3, 31)):
        data = report_queries.agreement_report_data(pairing.agreement, 2026, 3, as_of=as_of)
        return sum(r.held for r in data.categories), len(data.activities)

    make_activity(pairing.la, pairing.agreement, held_on=date(2026, 3, 5))
    first = held()
    with _new_request(app):
        assert held() == first
    make_activity(pairing.lb, pairing.agreement, held_on=date(2026, 3, 6))
    with _new_request(app):
        assert held() == (first[0] + 1, first[1] + 1)


def test_list_totals_over_bookkeeping_tables_are_never_memoised(app, make_user, api_notification, api_as):
    """Notifications are written without bumping the generation, so their totals must always be counted."""
    user = make_user("liaison")
    first, *_rest = [api_notification(user) for _ in range(3)]
    api = api_as(user)
    assert api.get("/notifications?unread=true").get_json()["total"] == 3
    assert api.post(f"/notifications/{first.id}/read").status_code == 200
    assert api.get("/notifications?unread=true").get_json()["total"] == 2
    api_notification(user)  # as the reminder sweep writes them
    assert api.get("/notifications?unread=true").get_json()["total"] == 3


def test_a_savepoint_does_not_bump_before_the_commit(app, counted):
    before = cache.current_generation()
    with _new_request(app):
        with db.session.begin_nested():
            db.session.execute(sa.update(Activity).values(place="会议室甲"))
        with db.session.begin_nested():
            db.session.execute(sa.update(Activity).values(place="会议室乙"))
        assert cache.current_generation() == before  # released savepoints: nothing bumped yet
    after = cache.current_generation()
    assert after[2] == before[2] + 1  # one bump, at the commit


def test_paginate_knows_the_total_of_a_short_last_page_without_counting(app, make_org):
    """A list's last page is short: its total is (pages before) + (rows shown), no count needed; a full page,
    or an empty one past the end, still counts (the total could be anything)."""
    from coop.orgs.models import Organization

    for i in range(7):
        make_org(f"分页测试党支部{i}")
    db.session.commit()
    stmt = sa.select(Organization).where(Organization.name.like("分页测试%")).order_by(Organization.id)
    statements = []

    def keep(conn, cursor, statement, *args):
        statements.append(statement.lower())

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        cache.clear()
        short = cache.paginate(stmt, page=2, per_page=5)
        assert (short.total, len(short.items), short.pages) == (7, 2, 2)
        assert not any("count(" in s for s in statements)
        full = cache.paginate(stmt, page=1, per_page=5)
        assert (full.total, len(full.items)) == (7, 5)
        past = cache.paginate(stmt, page=9, per_page=5)
        assert (past.total, past.items) == (7, [])
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    assert sum("count(" in s for s in statements) == 1  # the full page counted; the page past the end hit the memo


def test_personal_values_never_push_out_the_group_figures(app, counted, monkeypatch):
    """Per-person values (home panels, filter choices, list totals) live in their own LRU: thousands of them do
    not evict the group-wide figures the cockpit and scores depend on."""
    monkeypatch.setitem(cache.POOL_SIZES, "personal", 50)
    cache.clear()
    with _new_request(app):
        group = cache.memoized("test.group", 1, lambda: object())
        for user_id in range(500):
            cache.memoized("test.person", user_id, lambda: user_id, pool="personal")
        assert cache.memoized("test.group", 1, lambda: object()) is group
        assert len(cache._pools["personal"]) == 50
        misses = cache.stats["misses"]
        cache.memoized("test.person", 0, lambda: 0, pool="personal")  # the oldest person was let go
        assert cache.stats["misses"] == misses + 1


def test_signing_in_keeps_the_memoised_figures(app, client, make_user):
    """A sign-in records the time on the account, which no figure shows: it must not start a new data generation
    (a morning of sign-ins would make every worker recompute the group's figures), yet the time is stored."""
    from coop.auth.models import User
    from tests.conftest import DEFAULT_PASSWORD

    user = make_user("liaison", username="gen_login")
    db.session.commit()
    before = cache.current_generation()
    db.session.commit()
    resp = client.post("/login", data={"username": "gen_login", "password": DEFAULT_PASSWORD})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is not None
    assert cache.current_generation() == before
    db.session.commit()
    # A real change to the account still does.
    db.session.get(User, user.id).display_name = "改名"
    db.session.commit()
    assert cache.current_generation() != before
