"""Review screens: who sees what (a reviewer only their subtree, even by guessing ids), exports, forms."""
import io
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask import render_template
from flask_login import login_user
from openpyxl import load_workbook

from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.formatting import local_today
from coop.review.models import ActivityEvaluation, PartnerEvaluation, PointAdjustment, PointRule, Rating
from coop.review.operations import update_review_setting

ROUTES = [
    # (url template, {role: expected status}); {P1}, {P3}, {A1}, {act} are filled from the world.
    ("/review/?period=2026-07", {"rev_A": 200, "admin": 200, "lia_A1": 403, "sec_A1": 403}),
    ("/review/cell?agreement_id={P1}&category=study&period=2026-07", {"rev_A": 200, "rev_B": 404, "lia_A1": 403}),
    ("/review/cell?agreement_id={P3}&category=study&period=2026-07", {"rev_A": 404, "rev_B": 200, "admin": 200}),
    ("/review/export/cockpit.xlsx?period=2026-07", {"rev_A": 200, "lia_A1": 403}),
    ("/review/activities/{act}/evaluate", {"rev_A": 200, "rev_B": 403, "lia_A1": 403, "admin": 200}),
    ("/review/typical", {"rev_A": 200, "lia_A1": 403}),
    ("/review/agreements/{P1}/partners", {"lia_A1": 200, "lia_X": 200, "rev_A": 200, "rev_B": 403}),
    ("/review/scores?year=2026", {"rev_A": 200, "lia_A1": 403}),
    ("/review/export/scores.xlsx?year=2026", {"rev_A": 200, "lia_A1": 403}),
    ("/review/scores/{A1}?year=2026", {"rev_A": 200, "lia_A1": 200, "lia_X": 403, "rev_B": 403}),
    ("/review/rules", {"rev_A": 200, "lia_A1": 200, "admin": 200}),
    ("/review/settings", {"rev_A": 200, "admin": 200, "lia_A1": 403}),
    ("/review/ranking?year=2026&quarter=3", {"rev_A": 200, "admin": 200, "lia_A1": 404, "lia_X": 404}),
]


def _url(template, w):
    return template.format(P1=w.agreements["P1"].id, P3=w.agreements["P3"].id, A1=w.orgs["A1"].id,
                           act=w.acts["p1_study_jul5"].id)


@pytest.mark.parametrize("template, expected", ROUTES, ids=[r[0].split("?")[0] for r in ROUTES])
def test_route_by_role(app, review_world, login, template, expected):
    w = review_world
    url = _url(template, w)
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    for who, status in expected.items():
        client = app.test_client()
        login(client, w.users[who])
        assert client.get(url).status_code == status, (who, url)


def test_every_review_route_is_in_the_table(app):
    tested = {r[0].split("?")[0] for r in ROUTES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("review."):
            path = rule.rule.replace("<int:agreement_id>", "{P1}").replace("<int:activity_id>", "{act}") \
                .replace("<int:org_id>", "{A1}")
            assert path in tested, f"{rule.rule} has no row in ROUTES"


def test_reviewer_sees_only_their_subtree(client, review_world, login):
    w = review_world
    login(client, w.users["rev_A"])
    page = client.get("/review/?period=2026-07").get_data(as_text=True)
    assert "P1 甲一×疾控" in page and "P2 三方共建" in page
    assert "P3 乙一×疾控" not in page and "P4" not in page
    # Not by guessing an organization id outside the subtree either.
    assert client.get(f"/review/?period=2026-07&org={w.orgs['B1'].id}").status_code == 404
    assert client.get(f"/review/?period=2026-07&org={w.orgs['A1'].id}").status_code == 200
    assert client.get(f"/review/export/cockpit.xlsx?period=2026-07&org={w.orgs['B'].id}").status_code == 404


def test_cockpit_page_shows_symbols_counts_and_facts(client, review_world, login):
    w = review_world
    login(client, w.users["rev_G"])
    page = client.get("/review/?period=2026-07").get_data(as_text=True)
    assert "最近一次活动：2026年5月10日（82 天前）" in page
    assert "近180天 5 条记录中 4 条由甲一支部录入" in page
    assert "党员联学进度正常，本期开展2次，年度累计2/4" in page  # the cell's text for screen readers
    assert f"/review/cell?agreement_id={w.agreements['P1'].id}&amp;period=2026-07&amp;category=study" in page
    for quarter_page in ("2026-Q3", "2026"):
        assert client.get(f"/review/?period={quarter_page}").status_code == 200
    # A bad period falls back to the current month with a message instead of failing.
    resp = client.get("/review/?period=2030-01")
    assert resp.status_code == 200 and "所选周期尚未开始" in resp.get_data(as_text=True)


def test_drill_down_lists_the_activities_behind_a_cell(client, review_world, login):
    w = review_world
    login(client, w.users["rev_A"])
    page = client.get(f"/review/cell?agreement_id={w.agreements['P1'].id}&category=study&period=2026-07").get_data(as_text=True)
    for key in ("p1_study_jul5", "p1_study_jul20", "p1_study_withdrawn"):
        assert f"/activities/{w.acts[key].id}" in page
    assert f"/activities/{w.acts['p1_study_mar'].id}\"" in page  # March: in the year-to-date list only
    assert "已撤回" in page and "本期开展</dt><dd>2 次" in page
    assert client.get(f"/review/cell?agreement_id={w.agreements['P1'].id}&category=bogus&period=2026-07").status_code == 404
    draft = client.get(f"/review/cell?agreement_id={w.agreements['P4'].id}&category=study&period=2026-07")
    assert draft.status_code == 200 and "这个周期没有这一类别的活动" in draft.get_data(as_text=True)


def test_cockpit_shows_names_and_new_pairings_right_after_a_write(client, review_world, login, make_agreement):
    """Issue 10: the cockpit's pairings and their parties are memoised per data generation, so a renamed
    organization, a new agreement in force or an ended one shows on the very next visit."""
    from datetime import datetime, timezone

    w = review_world
    url = "/review/?period=2026-07"
    login(client, w.users["rev_G"])
    first = client.get(url).get_data(as_text=True)
    assert client.get(url).get_data(as_text=True) == first  # served again, the same
    assert "甲一简称" not in first and "P8 新结对" not in first
    w.orgs["A1"].short_name = "甲一简称"
    db.session.commit()
    page = client.get(url).get_data(as_text=True)
    assert "甲一简称" in page
    new = make_agreement(parties=[w.orgs["A2"], w.orgs["B1"]], starts_on=date(2026, 6, 1), title="P8 新结对")
    page = client.get(url).get_data(as_text=True)
    assert "P8 新结对" in page and f"agreement_id={new.id}&amp;period=2026-07" in page
    new.ended_at = datetime(2026, 6, 15, tzinfo=timezone.utc)  # terminated before July: no longer in force
    db.session.commit()
    assert "P8 新结对" not in client.get(url).get_data(as_text=True)


def test_cockpit_export_has_a_row_per_pairing_and_category(client, review_world, login):
    w = review_world
    login(client, w.users["rev_A"])
    resp = client.get("/review/export/cockpit.xlsx?period=2026-07")
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert rows[0][:2] == ("协议编号", "协议名称") and rows[0][-1] == "状态"
    assert len(rows) == 1 + 2 * 8
    study = next(r for r in rows if r[1] == "P1 甲一×疾控" and r[4] == "党员联学")
    assert study[5:] == (2, 1, 1, 0, 4, 4, 2, 2, "○ 进度正常")
    talent = next(r for r in rows if r[1] == "P1 甲一×疾控" and r[4] == "人才联育")
    assert talent[-1] == "▲ 进度滞后"


def test_scores_export_lines_sum_to_totals(client, review_world, login):
    w = review_world
    login(client, w.users["rev_G"])
    resp = client.get("/review/export/scores.xlsx?year=2026&quarter=")
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))[1:]
    totals = {r[0]: r[4] for r in rows if r[1] == "合计"}
    assert totals == {"甲一支部": 5, "甲二支部": 16, "乙一支部": 14}
    for org, total in totals.items():
        assert sum(r[4] for r in rows if r[0] == org and r[1] != "合计") == total


def test_evaluate_through_the_form(client, review_world, login):
    w = review_world
    act = w.acts["p1_study_jul5"]
    login(client, w.users["rev_A"])
    resp = client.post(f"/review/activities/{act.id}/evaluate",
                       data={"rating": "excellent", "comment": "可作示范", "typical_case": "y"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/activities/{act.id}")
    ev = db.session.execute(sa.select(ActivityEvaluation)).scalar_one()
    assert (ev.rating, ev.typical_case, ev.reviewer_id) == (Rating.excellent, True, w.users["rev_A"].id)
    # Typical case without a reason: the form comes back with the refusal.
    resp = client.post(f"/review/activities/{act.id}/evaluate", data={"rating": "good", "comment": "", "typical_case": "y"})
    assert resp.status_code == 200 and "推荐理由" in resp.get_data(as_text=True)
    assert client.get("/review/typical?year=2026").get_data(as_text=True).count("可作示范") == 1


def test_evaluations_partial_for_the_activity_page(app, review_world):
    w = review_world
    act = w.acts["p1_study_jul5"]
    db.session.add(ActivityEvaluation(activity_id=act.id, reviewer_id=w.users["rev_G"].id, rating=Rating.good,
                                      comment="继续保持", typical_case=True))
    db.session.commit()
    for who, can_evaluate in (("lia_A1", False), ("rev_A", True)):
        with app.test_request_context("/activities/1"):
            login_user(w.users[who])
            html = render_template("review/_activity_evaluations.html", activity=act)
        assert "党委评价" in html and "良好" in html and "继续保持" in html and "典型案例" in html
        assert ("评价此活动" in html) is can_evaluate


def test_partner_rating_through_the_page(client, review_world, make_agreement, login):
    w = review_world
    today = local_today()
    ag = make_agreement(parties=[w.orgs["A1"], w.orgs["S"]], starts_on=today - timedelta(days=100),
                        ends_on=today + timedelta(days=265), title="当期协议")
    login(client, w.users["lia_A1"])
    quarter = (today.month - 1) // 3 + 1
    slot = f"q{today.year}{quarter}f{w.orgs['A1'].id}t{w.orgs['S'].id}"
    page = client.get(f"/review/agreements/{ag.id}/partners").get_data(as_text=True)
    assert f'value="{slot}"' in page
    resp = client.post(f"/review/agreements/{ag.id}/partners",
                       data={"slot": slot, f"{slot}-score": "4", f"{slot}-comment": "配合好"})
    assert resp.status_code == 302
    ev = db.session.execute(sa.select(PartnerEvaluation)).scalar_one()
    assert (ev.score, ev.comment, ev.from_org_id, ev.to_org_id, ev.quarter) == (4, "配合好", w.orgs["A1"].id,
                                                                               w.orgs["S"].id, quarter)
    # A slot that is not the user's (speaking for the school) is refused.
    bad = f"q{today.year}{quarter}f{w.orgs['S'].id}t{w.orgs['A1'].id}"
    client.post(f"/review/agreements/{ag.id}/partners", data={"slot": bad, f"{bad}-score": "1"})
    assert db.session.execute(sa.select(sa.func.count()).select_from(PartnerEvaluation)).scalar_one() == 1


def test_ranking_hidden_until_published(app, review_world, login):
    w = review_world
    rev, lia = app.test_client(), app.test_client()
    login(rev, w.users["rev_G"])
    login(lia, w.users["lia_A1"])
    hidden = lia.get("/review/ranking?year=2026&quarter=3")
    assert hidden.status_code == 404 and "尚未公布" in hidden.get_data(as_text=True)
    page = rev.get("/review/ranking?year=2026&quarter=3").get_data(as_text=True)
    assert "排名尚未公布" in page and "甲一支部" in page
    assert rev.post("/review/settings", data={"stalled_days": "30", "ranking_published": "y"}).status_code == 302
    shown = lia.get("/review/ranking?year=2026&quarter=3")
    assert shown.status_code == 200 and "甲二支部" in shown.get_data(as_text=True)
    outsider = app.test_client()
    login(outsider, w.users["lia_X"])
    assert outsider.get("/review/ranking?year=2026&quarter=3").status_code == 404


def test_adjust_points_through_the_why_page(client, review_world, login):
    w = review_world
    a1 = w.orgs["A1"]
    login(client, w.users["lia_A1"])
    assert client.post(f"/review/scores/{a1.id}", data={"points": "5", "reason": "自己加分", "applies_on": "2026-09-01"}).status_code == 403
    login(client, w.users["rev_A"])
    resp = client.post(f"/review/scores/{a1.id}", data={"points": "5", "reason": "获评先进党支部", "applies_on": "2026-09-01"})
    assert resp.status_code == 302 and "quarter=3" in resp.headers["Location"]
    adj = db.session.execute(sa.select(PointAdjustment)).scalar_one()
    assert (adj.points, adj.reason, adj.applies_on) == (5, "获评先进党支部", date(2026, 9, 1))
    assert db.session.execute(sa.select(AuditEntry).where(AuditEntry.kind == "review.points_adjusted")).scalar_one()
    page = client.get(f"/review/scores/{a1.id}?year=2026&quarter=3").get_data(as_text=True)
    assert "获评先进党支部" in page and "开展并经各方确认的共建活动" in page
    missing_reason = client.post(f"/review/scores/{a1.id}", data={"points": "5", "reason": "", "applies_on": "2026-09-01"})
    assert missing_reason.status_code == 200 and "请填写调整理由" in missing_reason.get_data(as_text=True)


def test_rules_page_is_readable_by_all_and_editable_by_the_committee(client, review_world, login):
    w = review_world
    login(client, w.users["lia_A1"])
    page = client.get("/review/rules").get_data(as_text=True)
    assert "被党委评为典型案例" in page and 'name="points_' not in page and "+5" in page
    assert client.post("/review/rules", data={}).status_code == 403
    login(client, w.users["rev_A"])
    data = {"points_held_confirmed": "3", "active_held_confirmed": "y", "points_typical_case": "5",
            "active_typical_case": "y", "points_commitment_met": "10", "active_commitment_met": "y",
            "points_disputed": "-1"}  # disputed switched off
    assert client.post("/review/rules", data=data).status_code == 302
    rows = {(r.code, r.points, r.active) for r in db.session.execute(
        sa.select(PointRule).where(PointRule.scope_org_id == w.orgs["A"].id)).scalars()}
    assert rows == {("held_confirmed", 3, True), ("disputed", -1, False)}


def test_home_panel_for_reviewers(client, review_world, login):
    w = review_world
    login(client, w.users["rev_A"])
    page = client.get("/").get_data(as_text=True)
    assert "党委驾驶舱" in page and "停滞的结对" in page
    login(client, w.users["lia_A1"])
    assert "停滞的结对" not in client.get("/").get_data(as_text=True)


def test_nav_item_only_for_reviewers(client, review_world, login):
    w = review_world
    login(client, w.users["lia_A1"])
    assert 'href="/review/"' not in client.get("/review/rules").get_data(as_text=True)
    login(client, w.users["rev_B"])
    assert 'href="/review/"' in client.get("/review/rules").get_data(as_text=True)


def test_published_setting_is_per_committee(review_world):
    w = review_world
    update_review_setting(w.users["rev_B"], w.orgs["B"], ranking_published=True)
    db.session.commit()
    from coop.review.queries import published_ranking_scope

    assert published_ranking_scope(w.orgs["B1"]).scope_org_id == w.orgs["B"].id
    assert published_ranking_scope(w.orgs["A1"]) is None


def test_matrix_pages_but_lists_cover_every_pairing(client, review_world, login, monkeypatch):
    from coop.review import views

    monkeypatch.setattr(views, "COCKPIT_PER_PAGE", 2)
    login(client, review_world.users["rev_G"])
    first = client.get("/review/?period=2026-07").get_data(as_text=True)
    second = client.get("/review/?period=2026-07&page=2").get_data(as_text=True)
    assert "第 1 / 2 页" in first and "P3 乙一×疾控</a>\n        <span class=\"parties\">" not in first
    assert "P3 乙一×疾控</a>\n        <span class=\"parties\">" in second
    assert "市疾控支部被请求确认的 3 条记录均未答复" in first  # P3's fact: the lists are not paged


def test_points_pages_default_to_the_year_and_the_ranking_to_a_quarter(client, review_world, login):
    login(client, review_world.users["rev_G"])
    scores = client.get("/review/scores").get_data(as_text=True)
    assert f"共建积分 · {local_today().year}年</h1>" in scores
    ranking = client.get("/review/ranking").get_data(as_text=True)
    assert "季度</h1>" in ranking and '<option value="">全年</option>' not in ranking


def test_scores_page_follows_adjustments_rules_and_names_right_away(client, review_world, login):
    """Issue 10: the scores page (and scoring.scope_scores) is memoised per data generation, so every write —
    an adjustment, a committee's rule, an organization's short name — shows on the very next visit."""
    import re

    w = review_world
    url = "/review/scores?year=2026&quarter=3"

    def total(page, shown_name):
        m = re.search(rf">{shown_name}</a></th>.*?<b>(-?\d+)</b>", page, re.S)
        assert m, shown_name
        return int(m.group(1))

    login(client, w.users["rev_A"])
    first = client.get(url).get_data(as_text=True)
    assert client.get(url).get_data(as_text=True) == first  # served again, the same
    before = total(first, "甲一支部")
    assert client.post(f"/review/scores/{w.orgs['A1'].id}",
                       data={"points": "5", "reason": "获评先进党支部", "applies_on": "2026-09-01"}).status_code == 302
    assert total(client.get(url).get_data(as_text=True), "甲一支部") == before + 5
    db.session.add(PointRule(scope_org_id=w.orgs["A"].id, code="held_confirmed", label="开展并经各方确认的共建活动",
                             points=0, active=False))
    db.session.commit()
    page = client.get(url).get_data(as_text=True)
    assert total(page, "甲一支部") == before + 5 - 2 * 1  # the July activity confirmed by X no longer counts
    w.orgs["A1"].short_name = "甲一"
    db.session.commit()
    assert total(client.get(url).get_data(as_text=True), "甲一") == before + 3


def test_cockpit_page_and_export_show_extra_activities_as_such(client, review_world, login):
    w = review_world
    login(client, w.users["rev_G"])
    page = client.get("/review/?period=2026-05").get_data(as_text=True)
    assert "约定外开展 <b>1</b>" in page and "已完成 <b>0</b>" in page
    rows = list(load_workbook(io.BytesIO(client.get("/review/export/cockpit.xlsx?period=2026-05").data))
                .active.iter_rows(values_only=True))
    mass = next(r for r in rows if r[1] == "P2 三方共建" and r[4] == "群团联手")
    assert mass[5:] == (1, 1, 0, 0, 0, 0, 0, 1, "+ 约定外开展")
    assert not any(r[-1] == "✓ 已完成" for r in rows[1:])


def test_a_disputed_activity_cannot_be_a_typical_case_and_the_form_says_why(client, review_world, login):
    w = review_world
    act = w.acts["p1_event_disputed"]
    login(client, w.users["rev_A"])
    page = client.get(f"/review/activities/{act.id}/evaluate").get_data(as_text=True)
    assert "不能标记为典型案例" in page and 'name="typical_case"' in page
    box = re.search(r'<input[^>]*name="typical_case"[^>]*>', page).group(0)
    assert "disabled" in box and "checked" not in box
    resp = client.post(f"/review/activities/{act.id}/evaluate",
                       data={"rating": "excellent", "comment": "组织得好", "typical_case": "y"})
    assert resp.status_code == 200 and "异议解决、各方确认后再标记" in resp.get_data(as_text=True)
    assert db.session.execute(sa.select(ActivityEvaluation)).scalar_one_or_none() is None
    # Rating it without the mark is fine.
    ok = client.post(f"/review/activities/{act.id}/evaluate", data={"rating": "fair", "comment": "待核实"})
    assert ok.status_code == 302
    pending = client.get(f"/review/activities/{w.acts['p1_study_jul20'].id}/evaluate").get_data(as_text=True)
    assert "各方确认后才计入典型案例积分" in pending


@pytest.mark.parametrize("applies_on", ["1900-01-01", "2030-01-01", "tomorrow", "before-window"])
def test_adjustment_dates_outside_the_score_pages_are_refused(client, review_world, login, applies_on):
    w = review_world
    today = local_today()
    applies_on = {"tomorrow": (today + timedelta(days=1)).isoformat(),
                  "before-window": date(today.year - 5, 12, 31).isoformat()}.get(applies_on, applies_on)
    login(client, w.users["rev_A"])
    resp = client.post(f"/review/scores/{w.orgs['A1'].id}", data={"points": "5", "reason": "测试", "applies_on": applies_on})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "计入日期应在" in html
    assert f'id="applies_on-err"' in html  # shown at the date, not at the reason
    assert db.session.execute(sa.select(PointAdjustment)).scalar_one_or_none() is None
    # The earliest day the year picker offers is accepted.
    first = date(today.year - 4, 1, 1).isoformat()
    assert client.post(f"/review/scores/{w.orgs['A1'].id}",
                       data={"points": "5", "reason": "测试", "applies_on": first}).status_code == 302


def test_a_fractional_adjustment_shows_one_message(client, review_world, login):
    w = review_world
    login(client, w.users["rev_A"])
    html = client.post(f"/review/scores/{w.orgs['A1'].id}",
                       data={"points": "1.5", "reason": "测试", "applies_on": local_today().isoformat()}).get_data(as_text=True)
    assert "请填写整数。" in html and "应在 -100 到 100 之间" not in html
