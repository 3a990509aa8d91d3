"""The home page's panels (issue 10): what they list is memoised per data generation (coop.home.views.home_memo,
coop.review.queries.scope_summary), so a repeat visit is served from the memo — and every write shows at once."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from coop import cache
from coop.extensions import db
from coop.formatting import local_today
from coop.review.operations import rate_partner


def _home(client) -> str:
    resp = client.get("/")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _section(page: str, heading: str) -> str:
    """The panel (<section>) whose heading contains `heading`, or '' when the page has none."""
    for section in re.findall(r"<section.*?</section>", page, re.S):
        if heading in section:
            return section
    return ""


@pytest.fixture
def hits():
    """hits() -> how many memo lookups were served since the fixture started."""
    start = cache.stats["hits"]
    return lambda: cache.stats["hits"] - start


def test_pending_panel_follows_answers_and_new_entries(client, login, pairing, make_activity, hits):
    first = make_activity(pairing.la, pairing.agreement, title="第一次联学")
    login(client, pairing.lb)
    panel = _section(_home(client), "待您确认的活动")
    assert "第一次联学" in panel and '<span class="badge">1</span>' in panel
    served = hits()
    assert _section(_home(client), "待您确认的活动") == panel
    assert hits() > served  # the repeat came from the memo
    assert client.post(f"/activities/{first.id}/confirm", data={"decision": "confirm"}).status_code == 302
    assert _section(_home(client), "待您确认的活动") == ""  # answered: nothing waits any more
    make_activity(pairing.la, pairing.agreement, title="第二次联学", held_on=date(2026, 3, 19))
    panel = _section(_home(client), "待您确认的活动")
    assert "第二次联学" in panel and "第一次联学" not in panel


def test_planned_panel_shows_a_new_plan_at_once(client, login, pairing, make_activity, frozen_today):
    frozen_today(date(2026, 3, 20))
    login(client, pairing.la)
    assert "近期没有计划活动" in _section(_home(client), "近期计划活动")
    make_activity(pairing.la, pairing.agreement, title="计划中的联学", held_on=date(2026, 3, 25), status="planned")
    panel = _section(_home(client), "近期计划活动")
    assert "计划中的联学" in panel and "近期没有计划活动" not in panel


def test_expiring_agreements_show_at_once(client, login, pairing, make_agreement):
    login(client, pairing.sa)
    assert "下月到期的协议" not in _home(client)
    today = local_today()
    make_agreement(parties=[pairing.a, pairing.c], status="active", title="下月到期的协议",
                   starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=20))
    assert "下月到期的协议" in _section(_home(client), "即将到期的协议")


def test_a_renewed_agreement_no_longer_shows_as_expiring(client, login, pairing, make_agreement):
    """As the expiry reminder: once a renewal is drafted (or signed), the old agreement stops asking for one."""
    login(client, pairing.sa)
    today = local_today()
    old = make_agreement(parties=[pairing.a, pairing.c], status="active", title="将要续签的协议",
                         starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=20))
    assert "将要续签的协议" in _section(_home(client), "即将到期的协议")
    make_agreement(parties=[pairing.a, pairing.c], status="draft", title="续签的新协议", renewed_from_id=old.id,
                   starts_on=today + timedelta(days=21), ends_on=today + timedelta(days=385))
    assert "将要续签的协议" not in _section(_home(client), "即将到期的协议")


def test_reviewer_summary_counts_a_new_pairing_at_once(client, login, review_world, make_agreement, make_org, hits):
    w = review_world
    login(client, w.users["rev_A"])
    pattern = re.compile(r"共 (\d+) 个生效中的结对")
    before = int(pattern.search(_home(client))[1])
    served = hits()
    assert int(pattern.search(_home(client))[1]) == before
    assert hits() > served
    today = local_today()
    make_agreement(parties=[w.orgs["A2"], make_org()], status="active", starts_on=today - timedelta(days=10),
                   ends_on=today + timedelta(days=300))
    assert int(pattern.search(_home(client))[1]) == before + 1


def test_partner_rating_panel_goes_once_rated(client, login, review_world, monkeypatch):
    import coop.review.views as review_views

    day = date(2026, 6, 20)  # the last month of Q2: ratings are asked for
    monkeypatch.setattr(review_views, "local_today", lambda: day)
    w = review_world
    login(client, w.users["lia_A1"])
    panel = _section(_home(client), "结对互评")
    assert w.agreements["P1"].title in panel and w.agreements["P4"].title not in panel
    rate_partner(w.users["lia_A1"], w.agreements["P1"], from_org_id=w.orgs["A1"].id, to_org_id=w.orgs["X"].id,
                 year=2026, quarter=2, score=4, today=day)
    db.session.commit()
    assert _section(_home(client), "结对互评") == ""


def test_a_renewal_starting_late_in_the_quarter_is_not_rated_twice(client, login, review_world, monkeypatch,
                                                                   make_agreement):
    import coop.review.views as review_views

    day = date(2026, 6, 20)
    monkeypatch.setattr(review_views, "local_today", lambda: day)
    w = review_world
    old = w.agreements["P1"]
    make_agreement(parties=[w.orgs["A1"], w.orgs["X"]], status="active", title="续签后的结对协议",
                   renewed_from_id=old.id, starts_on=date(2026, 6, 28), ends_on=date(2027, 6, 27),
                   liaisons={w.orgs["A1"]: [w.users["lia_A1"]]})
    login(client, w.users["lia_A1"])
    panel = _section(_home(client), "结对互评")
    assert old.title in panel and "续签后的结对协议" not in panel
