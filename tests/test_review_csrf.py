"""Review forms work with CSRF protection on (the default test configuration turns it off)."""
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coop.extensions import db
from coop.formatting import local_today
from coop.review.models import ActivityEvaluation, PartnerEvaluation


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def _token(html: str, name: str = "csrf_token") -> str:
    return re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]+)"', html)[1]


def test_evaluation_and_partner_forms_post_with_their_tokens(client, review_world, make_agreement, login):
    w = review_world
    login(client, w.users["rev_A"])
    act = w.acts["p1_study_jul5"]
    page = client.get(f"/review/activities/{act.id}/evaluate").get_data(as_text=True)
    assert client.post(f"/review/activities/{act.id}/evaluate", data={"rating": "good"}).status_code == 400
    resp = client.post(f"/review/activities/{act.id}/evaluate", data={"rating": "good", "csrf_token": _token(page)})
    assert resp.status_code == 302 and db.session.execute(sa.select(ActivityEvaluation)).scalar_one()

    today = local_today()
    ag = make_agreement(parties=[w.orgs["A1"], w.orgs["S"]], starts_on=today - timedelta(days=100),
                        ends_on=today + timedelta(days=265))
    login(client, w.users["lia_A1"])
    slot = f"q{today.year}{(today.month - 1) // 3 + 1}f{w.orgs['A1'].id}t{w.orgs['S'].id}"
    page = client.get(f"/review/agreements/{ag.id}/partners").get_data(as_text=True)
    token = _token(page, f"{slot}-csrf_token")
    resp = client.post(f"/review/agreements/{ag.id}/partners",
                       data={"slot": slot, f"{slot}-csrf_token": token, f"{slot}-score": "5"})
    assert resp.status_code == 302
    assert db.session.execute(sa.select(PartnerEvaluation.score)).scalar_one() == 5
