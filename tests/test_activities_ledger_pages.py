"""The ledger pages at group scale (issue 10): what they memoise follows every write, and both forms of the
participation filter (ledger_page chooses one by the page's share of all activities) list the same pages."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from agreements.models import AgreementLiaison
from coop.activities import queries
from coop.activities.queries import ledger_page, ledger_query
from coop.extensions import db


def _select_options(html: str, name: str) -> list[str]:
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    return re.findall(r">([^<]*)</option>", match.group(1)) if match else []


def test_filter_choices_follow_a_new_agreement(client, login, pairing, make_org, make_agreement, make_activity):
    make_activity(pairing.la, pairing.agreement, title="第一次联学")
    login(client, pairing.la)
    assert "第一次联学" in client.get(f"/activities/?partner={pairing.c.id}").get_data(as_text=True)  # ignored
    html = client.get("/activities/").get_data(as_text=True)
    assert client.get("/activities/").get_data(as_text=True) == html  # the memoised choices, shown again
    assert _select_options(html, "partner") == ["全部伙伴", pairing.b.name]
    assert _select_options(html, "agreement") == []  # one agreement: nothing to choose

    d = make_org("新结对党支部")
    make_agreement(parties=[pairing.a, d], title="第二份结对协议", starts_on=date(2026, 3, 1))
    html = client.get("/activities/").get_data(as_text=True)
    assert _select_options(html, "partner") == ["全部伙伴"] + sorted([d.name, pairing.b.name])
    assert _select_options(html, "agreement") == ["全部协议", "第二份结对协议", pairing.agreement.title]
    # The new partner is a valid choice now: it filters (nobody has logged anything with it yet).
    assert "没有符合条件的活动" in client.get(f"/activities/?partner={d.id}").get_data(as_text=True)


def test_log_button_follows_a_named_liaison(client, login, pairing):
    login(client, pairing.sa)  # a secretary, not a liaison: may see the ledger, not log
    assert 'href="/activities/new"' not in client.get("/activities/").get_data(as_text=True)
    db.session.add(AgreementLiaison(agreement_id=pairing.agreement.id, organization_id=pairing.a.id,
                                    user_id=pairing.sa.id))
    db.session.commit()
    assert 'href="/activities/new"' in client.get("/activities/").get_data(as_text=True)


def test_total_follows_a_new_activity(client, login, pairing, make_activity):
    make_activity(pairing.la, pairing.agreement, title="第一次联学")
    login(client, pairing.la)
    assert "共 1 条" in client.get("/activities/").get_data(as_text=True)
    make_activity(pairing.lb, pairing.agreement, title="第二次联学")
    html = client.get("/activities/").get_data(as_text=True)
    assert "共 2 条" in html and "第二次联学" in html


@pytest.fixture
def busy(pairing, make_org, make_agreement, make_activity):
    """A's ledger holds most activities (some on the same day, ordered by id then); C (the outsider's
    organization) takes part in the two others."""
    d = make_org("另一党支部")
    other = make_agreement(parties=[pairing.c, d], title="另一份协议")
    day = date(2026, 1, 5)
    for i in range(7):
        make_activity(pairing.la, pairing.agreement, title=f"甲{i}", held_on=day + timedelta(days=i % 4))
    for i in range(2):
        make_activity(pairing.outsider, other, title=f"丙{i}", held_on=day + timedelta(days=i))
    return pairing


def _ids(pagination):
    return [a.id for a in pagination.items]


@pytest.mark.parametrize("who", ["la", "outsider"])
def test_both_forms_of_the_participation_filter_list_the_same_pages(busy, who, monkeypatch):
    user = getattr(busy, who)
    expected_total = {"la": 7, "outsider": 2}[who]
    walked = []
    real = queries.ledger_query

    def spy(*args, **kwargs):
        walked.append(kwargs.get("walk", False))
        return real(*args, **kwargs)

    for page in (1, 2, 3, 4, 5):
        collected = db.paginate(ledger_query(user, scope="mine"), page=page, per_page=2, error_out=False)
        walking = db.paginate(ledger_query(user, scope="mine", walk=True), page=page, per_page=2, error_out=False)
        assert _ids(walking) == _ids(collected)
        assert collected.total == expected_total
        monkeypatch.setattr(queries, "ledger_query", spy)
        walked.clear()
        chosen = ledger_page(user, page=page, per_page=2, scope="mine")
        monkeypatch.setattr(queries, "ledger_query", real)
        assert _ids(chosen) == _ids(collected) and chosen.total == expected_total
        assert chosen.pages == collected.pages
        # A's ledger is most of the activities: walked in ledger order; C's two are collected, never walked.
        assert (True in walked) is (who == "la")
