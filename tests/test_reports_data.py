"""Report figures, category by category, for a month of data (tests/fixtures/reports.py: report_month)."""
from datetime import date

import pytest

from coop.reports import progress as pg
from coop.reports.queries import (
    agreement_report_data,
    agreements_in_month,
    committee_report_data,
    committee_scope_roots,
    last_completed_month,
    month_period,
    organization_report_data,
    parse_month,
    shift_month,
    typical_cases,
)


def _cats(data):
    return {r.code: r for r in data.categories}


def test_agreement_report_figures_category_by_category(report_month):
    data = agreement_report_data(report_month.agreement, 2026, 10)
    cats = _cats(data)
    # (held, confirmed, pending, disputed, year_to_date, target, expected, status)
    expected = {
        "study": (2, 1, 1, 0, 3, 4, 3, "on_track"),
        "event": (1, 0, 0, 1, 0, 2, 1, "none"),
        "service": (0, 0, 0, 0, 1, 1, 0, "done"),
        "org": (1, 1, 0, 0, 8, 12, 9, "behind"),
        "culture": (0, 0, 0, 0, 0, 2, 1, "none"),
        "talent": (1, 1, 0, 0, 1, 0, 0, "extra"),  # no commitment: outside the agreement
        "brand": (0, 0, 0, 0, 0, 0, 0, "na"),
        "mass": (0, 0, 0, 0, 0, 0, 0, "na"),
    }
    for code, figures in expected.items():
        r = cats[code]
        assert (r.held, r.confirmed, r.pending, r.disputed, r.year_to_date, r.target, r.expected, r.status) == figures, code
    s = data.summary
    assert (s.held, s.confirmed, s.pending, s.disputed) == (5, 3, 1, 1)
    assert (s.year_to_date, s.target) == (12, 21)  # committed categories only: 3+0+1+8+0 of 4+2+1+12+2
    assert s.overall_status == "none"
    assert s.lagging == ["组织联合 8/12", "活动联办 0/2", "文化联创 0/2"]
    assert cats["org"].percent == 67 and cats["study"].symbol == "○" and cats["org"].symbol == "▲"
    # What a matrix cell says, on screen and in the PDF grid.
    assert (cats["org"].cell_text, cats["talent"].cell_text, cats["brand"].cell_text) == ("▲ 8/12", "+ 1", "—")


def test_agreement_report_lists(report_month):
    data = agreement_report_data(report_month.agreement, 2026, 10)
    titles = [a.title for a in data.activities]
    assert titles == ["10月联席会议", "社区义诊志愿服务", "联合主题党日：重温入党誓词", "电力安全技能培训", "健康知识讲座暨党课"]
    photo = next(a for a in data.activities if a.id == report_month.photo_activity.id)
    assert [t.path for t in photo.thumbnails] == ["thumbs/t0.jpg", "thumbs/t1.jpg"]
    assert photo.place == "西柏坡纪念馆" and photo.party_member_count == 32
    assert photo.participants == ["运维检修党支部", "疾控中心第一党支部"]  # short names where set
    open_items = {a.title: a.note for a in data.open_items}
    assert open_items == {"社区义诊志愿服务": "疾控中心第一党支部有异议：我方未参加此次活动",
                          "健康知识讲座暨党课": "待运维检修党支部确认"}
    assert [a.title for a in data.planned] == ["书记送课上门（计划）"]
    parties = {p.label: (p.name, [l.name for l in p.liaisons]) for p in data.parties}
    assert parties == {"甲方": ("运维检修党支部", ["张伟"]), "乙方": ("石家庄市疾病预防控制中心第一党支部", ["郑凯"])}
    chart = {(p.year, p.month): (p.held, p.confirmed) for p in data.chart}
    assert len(data.chart) == 12 and data.chart[0].month == 11 and data.chart[-1].month == 10
    assert chart[(2026, 10)] == (5, 3) and chart[(2026, 3)] == (2, 2) and chart[(2026, 9)] == (0, 0)
    assert data.title == "运维检修党支部与疾控中心第一党支部党建结对共建协议2026年10月结对共建月度报告"


def test_signals_one_sided_and_stalled(report_month):
    data = agreement_report_data(report_month.agreement, 2026, 10)
    # 8 held entries since 2026-05-05, 7 of them logged by 运维检修党支部.
    assert data.summary.one_sided and "8条记录中7条由运维检修党支部录入" in data.summary.one_sided_reason
    assert not data.summary.stalled and data.summary.last_held_on == date(2026, 10, 25)
    quiet = agreement_report_data(report_month.quiet, 2026, 10).summary
    assert quiet.stalled and quiet.days_silent == 72 and quiet.last_held_on == date(2026, 8, 20)
    assert not quiet.one_sided  # one entry is too few to call anything one-sided


def test_partner_that_never_confirms_is_one_sided(report_month, make_agreement, report_activity):
    a, b = report_month.ops, report_month.school
    ag = make_agreement(parties=[a, b])
    report_activity(ag, "study", date(2026, 9, 1), confirmation="pending", organizer=a)
    report_activity(ag, "study", date(2026, 10, 1), confirmation="pending", organizer=a)
    report_activity(ag, "event", date(2026, 10, 2), confirmation="pending", organizer=b)
    s = pg.pairing_signals([ag], date(2026, 10, 31))[ag.id]
    assert s.dominant_org_id is None and s.silent_partner_ids == (b.id,)
    assert "华北能源大学电力学院团支部从未确认对方录入的活动" in agreement_report_data(ag, 2026, 10).summary.one_sided_reason


def test_organization_report_sums_its_agreements(report_month):
    data = organization_report_data(report_month.ops, 2026, 10)
    assert [s.agreement_id for s in data.agreements] == [report_month.agreement.id]
    totals = {t.code: (t.held, t.confirmed, t.previous_held) for t in data.category_totals}
    assert totals["study"] == (2, 1, 0) and totals["org"] == (1, 1, 0) and totals["event"] == (1, 0, 0)
    assert data.totals["held"] == 5 and data.totals["confirmed"] == 3 and data.totals["year_to_date"] == 12
    assert len(data.activities) == 5 and len(data.open_items) == 2
    assert data.one_sided and not data.stalled


def test_committee_report_scope_matrix_and_trend(report_month, make_org, make_agreement, report_activity):
    outside = make_agreement(parties=[make_org("外部甲"), make_org("外部乙")])
    scoped = committee_report_data(report_month.committee_org, 2026, 10)
    ids = {s.agreement_id for s in scoped.agreements}
    assert ids == {report_month.agreement.id, report_month.quiet.id}
    assert scoped.scope_name == "华夏电力公司党委" and scoped.title.startswith("华夏电力公司党委2026年10月")
    assert scoped.totals == {"agreements": 2, "held": 5, "confirmed": 3, "previous_held": 0, "stalled": 1, "one_sided": 1}
    # Worst first: both pairings are "none" overall; the silent one (72 days) leads.
    assert [s.agreement_id for s in scoped.agreements] == [report_month.quiet.id, report_month.agreement.id]
    assert scoped.status_counts["none"] == 2
    assert [s.agreement_id for s in scoped.stalled] == [report_month.quiet.id]
    study = next(t for t in scoped.category_totals if t.code == "study")
    assert (study.held, study.committed, study.status_counts["on_track"]) == (2, 2, 1)
    assert scoped.typical_cases == []  # nobody marked a typical case
    whole = committee_report_data(None, 2026, 10)
    assert whole.scope is None and whole.scope_name == "全平台"
    assert {s.agreement_id for s in whole.agreements} == ids | {outside.id}
    # September vs October trend.
    sept = committee_report_data(report_month.committee_org, 2026, 11, as_of=date(2026, 11, 30))
    assert sept.totals["previous_held"] == 5


def test_committee_category_counts_add_up_for_a_term_starting_in_late_december(report_month, make_agreement):
    """A commitment whose share of the year rounds to nothing is still a commitment: the pairing counts among
    "有约定的结对", and the status columns never add up to more than that."""
    late = make_agreement(parties=[report_month.ops, report_month.school], starts_on=date(2025, 12, 29),
                          ends_on=date(2026, 12, 28), commitments={"study": 4})
    data = committee_report_data(report_month.committee_org, 2025, 12, as_of=date(2025, 12, 31))
    assert late.id in {s.agreement_id for s in data.agreements}
    study = next(t for t in data.category_totals if t.code == "study")
    assert study.committed >= 1
    for total in data.category_totals:
        counted = sum(total.status_counts.get(k, 0) for k in ("done", "on_track", "behind", "none"))
        assert counted <= total.committed, (total.code, total.status_counts, total.committed)


def test_as_dict_is_json_ready(report_month):
    import json

    data = agreement_report_data(report_month.agreement, 2026, 10).as_dict()
    text = json.dumps(data, ensure_ascii=False)
    study = next(c for c in data["categories"] if c["code"] == "study")
    assert {k: study[k] for k in ("held", "confirmed", "year_to_date", "commitment", "status")} == {
        "held": 2, "confirmed": 1, "year_to_date": 3, "commitment": 4, "status": "on_track"}
    assert study["symbol"] == "○" and data["period"]["first"] == "2026-10-01" and "党员联学" in text


def test_agreements_in_month_respects_term_status_and_termination(app, make_agreement):
    from datetime import datetime, timezone

    first, last = date(2026, 10, 1), date(2026, 10, 31)
    active = make_agreement()
    draft = make_agreement(status="draft")
    later = make_agreement(starts_on=date(2026, 11, 1), ends_on=date(2027, 10, 31))
    ended = make_agreement(status="expired", starts_on=date(2025, 10, 1), ends_on=date(2026, 9, 30))
    stopped = make_agreement(status="terminated", ended_at=datetime(2026, 9, 15, 2, tzinfo=timezone.utc))
    stopped_mid = make_agreement(status="terminated", ended_at=datetime(2026, 10, 15, 2, tzinfo=timezone.utc))
    got = {a.id for a in agreements_in_month(first, last)}
    assert got == {active.id, stopped_mid.id}
    assert draft.id not in got and later.id not in got and ended.id not in got and stopped.id not in got


def test_committee_scope_roots_are_orgs_with_a_reviewer(report_month, make_user, make_org):
    other = make_org("另一党委", kind="committee")
    make_user("committee", org=other, is_active_account=False)
    assert [o.id for o in committee_scope_roots()] == [report_month.committee_org.id]


@pytest.mark.parametrize("text, expected", [("2026-10", (2026, 10)), ("2026/1", (2026, 1)), ("2026年3月", (2026, 3))])
def test_parse_month(text, expected):
    assert parse_month(text) == expected


@pytest.mark.parametrize("text", ["2026-13", "26-10", "", "2026-10-01", "十月"])
def test_parse_month_refuses(text):
    with pytest.raises(ValueError, match="月份格式不正确"):
        parse_month(text)


def test_month_helpers():
    assert shift_month(2026, 1, -1) == (2025, 12) and shift_month(2026, 12, 1) == (2027, 1)
    assert last_completed_month(date(2026, 11, 5)) == (2026, 10)
    assert last_completed_month(date(2027, 1, 1)) == (2026, 12)
    running = month_period(2026, 11, as_of=date(2026, 11, 20))
    assert running.last == date(2026, 11, 20) and not running.complete
    with pytest.raises(ValueError):
        month_period(2026, 12, as_of=date(2026, 11, 20))


def test_typical_cases_come_from_registered_providers(report_month, monkeypatch):
    from coop.reports import queries

    seen = []

    def provider(agreement_ids, first, last):
        seen.append((sorted(agreement_ids), first, last))
        return [queries.TypicalCase(report_month.photo_activity.id, "联合主题党日：重温入党誓词", date(2026, 10, 12),
                                    "study", "运维检修党支部、疾控中心第一党支部", "形式新颖，可推广")]

    assert typical_cases([1, 2], date(2026, 10, 1), date(2026, 10, 31)) == []  # nothing marked
    monkeypatch.setattr(queries, "TYPICAL_CASE_PROVIDERS", [provider])
    data = committee_report_data(report_month.committee_org, 2026, 10)
    assert [c.reason for c in data.typical_cases] == ["形式新颖，可推广"]
    assert seen == [(sorted([report_month.agreement.id, report_month.quiet.id]), date(2026, 10, 1), date(2026, 10, 31))]
