"""The API's memoised payloads (issue 10): the first pages of the agreement and activity lists and the monthly
report data are served from coop.cache on repeat — never across callers who see different things, and never
stale: a write through the API (or anywhere) shows in the very next read."""
from __future__ import annotations

from coop import cache
from coop.api import views


def activity(world, **overrides) -> dict:
    payload = {"agreement_id": world.agreement.id, "category": "study", "title": "书记送课上门",
               "held_on": "2026-03-12", "organization_ids": [world.b.id]}
    payload.update(overrides)
    return payload


def memoised(name: str) -> int:
    """How many payloads this process holds under `name`."""
    return sum(1 for key in [k for pool in cache._pools.values() for k in pool] if key[0] == name)  # noqa: SLF001 — the tests look inside


def test_activity_list_is_served_again_and_shows_a_write_at_once(api_as, api_world):
    w = api_world
    la, lb, reviewer = api_as(w.la), api_as(w.lb), api_as(w.reviewer)
    assert la.post("/activities", json=activity(w)).status_code == 201
    first = reviewer.get("/activities").json
    hits = cache.stats["hits"]
    assert reviewer.get("/activities").json == first
    assert cache.stats["hits"] > hits and memoised("api.activities") >= 1
    assert first["total"] == 1 and first["items"][0]["confirmation"] == "pending"

    # A partner's answer and a new entry: the next list says so (the write started a new data generation).
    answer = lb.post(f"/activities/{first['items'][0]['id']}/confirmation", json={"decision": "confirm"})
    assert answer.status_code == 200
    assert reviewer.get("/activities").json["items"][0]["confirmation"] == "confirmed"
    assert la.post("/activities", json=activity(w, held_on="2026-04-02", title="主题党日")).status_code == 201
    after = reviewer.get("/activities").json
    assert after["total"] == 2 and after["items"][0]["title"] == "主题党日"


def test_callers_who_see_different_things_never_share_a_page(api_as, api_world):
    w = api_world
    assert api_as(w.la).post("/activities", json=activity(w)).status_code == 201
    for user in (w.la, w.lb, w.reviewer, w.admin):  # each memoises the list it sees
        assert api_as(user).get("/activities").json["total"] == 1
        assert api_as(user).get("/agreements").json["total"] == 1
    assert api_as(w.lc).get("/activities").json["total"] == 0  # the outsider, right after the others
    assert api_as(w.lc).get("/agreements").json["items"] == []
    assert api_as(w.la).get("/activities?category=event").json["total"] == 0  # another filter, another page
    assert api_as(w.la).get("/activities?per_page=1&page=2").json["items"] == []


def test_agreement_list_shows_a_new_draft_and_a_status_change(api_as, api_world):
    w = api_world
    sa = api_as(w.sa)
    before = sa.get("/agreements").json
    assert sa.get("/agreements").json == before and before["total"] == 1
    draft = sa.post("/agreements", json={
        "title": "新的共建协议", "party_ids": [w.a.id, w.b.id], "starts_on": "2026-01-01", "ends_on": "2026-12-31",
        "commitments": {"study": 2}})
    assert draft.status_code == 201, draft.json
    listed = sa.get("/agreements").json
    assert listed["total"] == 2 and {a["title"] for a in listed["items"]} >= {"新的共建协议"}


def test_only_the_first_pages_are_memoised(api_as, api_world):
    w = api_world
    reviewer = api_as(w.reviewer)
    cache.clear()
    deep = views.MEMO_ROWS // 10 + 1  # per_page=10: the first rows past MEMO_ROWS
    assert reviewer.get(f"/activities?per_page=10&page={deep}").status_code == 200
    assert memoised("api.activities") == 0
    assert reviewer.get(f"/activities?per_page=10&page={deep - 1}").status_code == 200
    assert memoised("api.activities") == 1


def test_report_data_is_served_again_and_shows_a_confirmation_at_once(api_as, api_world):
    w = api_world
    logged = api_as(w.la).post("/activities", json=activity(w, held_on="2026-03-10")).json
    reviewer = api_as(w.reviewer)
    first = reviewer.get("/reports/monthly?month=2026-03")
    assert first.status_code == 200 and first.json["agreements"][0]["confirmed"] == 0
    hits = cache.stats["hits"]
    assert reviewer.get("/reports/monthly?month=2026-03").json == first.json
    assert cache.stats["hits"] > hits and memoised("api.report_json") >= 1
    # The same figures for the agreement's own report are another payload (other subject, other PDF link).
    own = api_as(w.la).get(f"/reports/monthly?month=2026-03&agreement_id={w.agreement.id}").json
    assert own["kind"] == "agreement" and own["pdf_url"] != first.json["pdf_url"]

    answer = api_as(w.lb).post(f"/activities/{logged['id']}/confirmation", json={"decision": "confirm"})
    assert answer.status_code == 200
    assert reviewer.get("/reports/monthly?month=2026-03").json["agreements"][0]["confirmed"] == 1
    # Access is checked on every request, memo or not.
    assert api_as(w.la).get("/reports/monthly?month=2026-03").status_code == 403
    assert api_as(w.lc).get(f"/reports/monthly?month=2026-03&agreement_id={w.agreement.id}").status_code == 404


def test_report_json_publishes_the_values_of_the_reports_own_plain_form(api_as, api_world):
    """report_json reads the dataclasses field by field (no full as_dict): each value it publishes is the one
    `data.as_dict()` — the reports' own plain form — holds."""
    from coop.api.schemas import report_json
    from coop.reports import queries as q

    w = api_world
    la, lb = api_as(w.la), api_as(w.lb)
    first = la.post("/activities", json=activity(w, held_on="2026-03-10")).json
    la.post("/activities", json=activity(w, held_on="2026-03-20", category="event"))
    lb.post(f"/activities/{first['id']}/confirmation", json={"decision": "dispute", "comment": "人数不对"})
    for data in (q.agreement_report_data(w.agreement, 2026, 3), q.organization_report_data(w.b, 2026, 3),
                 q.committee_report_data(w.committee, 2026, 3)):
        plain = data.as_dict()
        out = report_json(data, agreement_id=None, organization_id=None, pdf_url="/x")
        assert out["period"] == {k: plain["period"][k] for k in ("first", "last", "complete")}
        summaries = [plain["summary"]] if data.kind == "agreement" else plain["agreements"]
        assert len(out["agreements"]) == len(summaries) == 1
        for got, want in zip(out["agreements"], summaries):
            renamed = {"summary": want["one_line"], "party_ids": [p["organization_id"] for p in want["parties"]]}
            assert got == {k: renamed[k] if k in renamed else want[k] for k in got if k != "categories"} | {
                "categories": got["categories"]}
            assert got["categories"] == [{k: c[k] for k in got["categories"][0]} for c in want["categories"]]
        for name in ("activities", "open_items"):
            lines = plain.get(name, [])
            keys = list(out[name][0]) if out[name] else []
            assert out[name] == [{k: line[k] for k in keys} for line in lines]
        if data.kind == "agreement":  # the disputed entry is listed, with its note
            assert len(out["activities"]) == 2 and "人数不对" in out["open_items"][0]["note"]
        else:
            assert out["category_totals"] == [{k: t[k] for k in out["category_totals"][0]}
                                              for t in plain["category_totals"]]
            assert out["totals"] == {k: v for k, v in plain["totals"].items() if isinstance(v, int)}
