"""Report screens: who sees what, downloads by id, "generate now", versions, month batches with progress."""
import hashlib
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from coop.db import now_utc
from coop.extensions import db
from coop.reports import operations as ops
from coop.reports.models import MonthlyReport, ReportKind, ReportRun, RunStatus
from tests.conftest import poll_until_finished


@pytest.fixture
def archived(report_month, fast_render):
    """Every October report archived once (stub PDFs), keyed by subject_key."""
    from coop.reports.jobs import generate_month

    generate_month(2026, 10)
    return {r.subject_key: r for r in db.session.execute(sa.select(MonthlyReport)).scalars()}


@pytest.fixture
def people(report_month, make_user, make_org):
    outsider_org = make_org("无关党支部")
    return {
        "ops_liaison": report_month.ops_liaison,
        "cdc_liaison": report_month.cdc_liaison,
        "reviewer": report_month.reviewer,
        "outsider": make_user("liaison", "secretary", org=outsider_org),
        "school_secretary": make_user("secretary", org=report_month.school),
        "admin": make_user("admin"),
    }


def _key(report_month, name):
    return {
        "agreement": f"agreement:{report_month.agreement.id}",
        "quiet": f"agreement:{report_month.quiet.id}",
        "ops": f"organization:{report_month.ops.id}",
        "cdc": f"organization:{report_month.cdc.id}",
        "school": f"organization:{report_month.school.id}",
        "committee": f"committee:{report_month.committee_org.id}",
        "platform": "committee:*",
    }[name]


# Which archived report each person may download (everything else: 403).
ACCESS = {
    "ops_liaison": {"agreement", "ops"},
    "cdc_liaison": {"agreement", "cdc"},
    "school_secretary": {"quiet", "school"},
    "reviewer": {"agreement", "quiet", "ops", "committee"},  # sales' org report is in scope too (checked below)
    "outsider": set(),
    "admin": {"agreement", "quiet", "ops", "cdc", "school", "committee", "platform"},
}


@pytest.mark.parametrize("who", sorted(ACCESS))
def test_download_permissions(client, login, people, archived, report_month, who):
    login(client, people[who])
    for name in ("agreement", "quiet", "ops", "cdc", "school", "committee", "platform"):
        report = archived[_key(report_month, name)]
        resp = client.get(f"/reports/{report.id}/download")
        expected = 200 if name in ACCESS[who] else 403
        assert resp.status_code == expected, (who, name, resp.status_code)
        if expected == 200:
            assert resp.mimetype == "application/pdf"
            assert hashlib.sha256(resp.data).hexdigest() == report.sha256 == resp.headers["X-Content-SHA256"]
            assert "attachment" in resp.headers["Content-Disposition"]
        resp.close()


def test_guessing_ids_gives_404_or_403(client, login, people, archived):
    login(client, people["outsider"])
    assert client.get("/reports/999999/download").status_code == 404
    assert client.get("/reports/abc/download").status_code == 404
    some = max(r.id for r in archived.values())
    assert client.get(f"/reports/{some}/download").status_code == 403


def test_anonymous_is_sent_to_login(client, archived):
    some = next(iter(archived.values()))
    resp = client.get(f"/reports/{some.id}/download")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_archive_list_shows_only_visible_reports(client, login, people, archived, report_month):
    login(client, people["school_secretary"])
    html = client.get("/reports/").get_data(as_text=True)
    ids = set(int(i) for i in re.findall(r"/reports/(\d+)/download", html))
    assert ids == {archived[_key(report_month, "quiet")].id, archived[_key(report_month, "school")].id}
    login(client, people["reviewer"])
    html = client.get("/reports/?kind=committee").get_data(as_text=True)
    assert set(int(i) for i in re.findall(r"/reports/(\d+)/download", html)) == {archived[_key(report_month, "committee")].id}


def test_nav_has_monthly_reports(client, login, people):
    login(client, people["ops_liaison"])
    html = client.get("/reports/").get_data(as_text=True)
    assert '<a href="/reports/" aria-current="page">月度报告</a>' in html


def test_agreement_page_shows_the_same_numbers_as_the_data(client, login, people, report_month):
    from coop.reports.queries import agreement_report_data

    login(client, people["cdc_liaison"])
    resp = client.get(f"/reports/agreements/{report_month.agreement.id}/2026-10")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    data = agreement_report_data(report_month.agreement, 2026, 10)
    rows = re.findall(r"<tr>\s*<td class=\"nowrap\"><span class=\"cat-swatch\"[^>]*></span>(\S+?)</td>(.*?)</tr>", html, re.S)
    assert len(rows) == 8
    for (name, cells), cat in zip(rows, data.categories):
        numbers = re.findall(r'<td class="num">([\d/—]+)', cells)
        assert name == cat.name
        target = str(cat.target) if cat.target else "—"
        assert numbers[:3] == [f"{cat.year_to_date}/{target}", str(cat.held), str(cat.confirmed)], name
        assert cat.status_label in cells
    assert "联合主题党日：重温入党誓词" in html and "我方未参加此次活动" in html and "书记送课上门（计划）" in html
    assert html.count('src="data:image/jpeg;base64,') == 2  # the photo thumbnails
    assert "<svg" in html and "立即生成 PDF" in html


def test_agreement_url_for_other_domains(app, report_month):
    from flask import url_for

    with app.test_request_context():
        url = url_for("reports.agreement_month", agreement_id=report_month.agreement.id, month="2026-10")
    assert url == f"/reports/agreements/{report_month.agreement.id}/2026-10"


@pytest.mark.parametrize("path, who, status", [
    ("/reports/agreements/{agreement}/2026-10", "outsider", 403),
    ("/reports/agreements/{agreement}/2026-10", "reviewer", 200),
    ("/reports/agreements/{agreement}/2099-01", "ops_liaison", 404),
    ("/reports/agreements/{agreement}/2026-13", "ops_liaison", 404),
    ("/reports/agreements/999999/2026-10", "admin", 404),
    ("/reports/organizations/{ops}/2026-10", "ops_liaison", 200),
    ("/reports/organizations/{ops}/2026-10", "cdc_liaison", 403),
    ("/reports/organizations/{ops}/2026-10", "reviewer", 200),
    ("/reports/committee/2026-10?org={committee}", "reviewer", 200),
    ("/reports/committee/2026-10?org={committee}", "ops_liaison", 403),
    ("/reports/committee/2026-10", "reviewer", 403),
    ("/reports/committee/2026-10", "admin", 200),
    ("/reports/runs/1/progress", "reviewer", 403),
    ("/reports/", "outsider", 200),
])
def test_page_permissions(client, login, people, report_month, path, who, status):
    login(client, people[who])
    url = path.format(agreement=report_month.agreement.id, ops=report_month.ops.id,
                      committee=report_month.committee_org.id)
    assert client.get(url).status_code == status


def test_current_month_page_is_live_without_generate_button(client, login, people, report_month):
    from coop.formatting import local_today

    today = local_today()
    login(client, people["ops_liaison"])
    html = client.get(f"/reports/agreements/{report_month.agreement.id}/{today:%Y-%m}").get_data(as_text=True)
    assert "本月尚未结束" in html and "立即生成 PDF" not in html


def test_generate_now_makes_versions_and_says_so(client, login, people, report_month, fast_render):
    login(client, people["ops_liaison"])
    form = {"kind": "agreement", "subject_id": report_month.agreement.id, "month": "2026-10"}
    resp = client.post("/reports/generate", data=form, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "已生成第 1 版" in html and "重新生成（第 2 版）" in html
    resp = client.post("/reports/generate", data=form, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "已生成第 2 版" in html and "此前的版本仍保留在存档中" in html
    versions = db.session.execute(sa.select(MonthlyReport.version, MonthlyReport.created_by_id)).all()
    assert sorted(versions) == [(1, people["ops_liaison"].id), (2, people["ops_liaison"].id)]


def test_generate_refuses_running_month_and_strangers(client, login, people, report_month, fast_render):
    from coop.formatting import local_today

    login(client, people["ops_liaison"])
    resp = client.post("/reports/generate", data={"kind": "agreement", "subject_id": report_month.agreement.id,
                                                  "month": f"{local_today():%Y-%m}"}, follow_redirects=True)
    assert "尚未结束" in resp.get_data(as_text=True)
    login(client, people["outsider"])
    assert client.post("/reports/generate", data={"kind": "agreement", "subject_id": report_month.agreement.id,
                                                  "month": "2026-10"}).status_code == 403
    assert client.post("/reports/generate", data={"kind": "nonsense", "month": "2026-10"}).status_code == 400
    assert client.post("/reports/generate", data={"kind": "committee", "month": "2026-10"}).status_code == 403
    assert db.session.execute(sa.select(sa.func.count()).select_from(MonthlyReport)).scalar() == 0


class TestWithCsrf:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_generate_needs_the_csrf_token(self, client, login, people, report_month, fast_render):
        login(client, people["ops_liaison"])
        form = {"kind": "agreement", "subject_id": report_month.agreement.id, "month": "2026-10"}
        assert client.post("/reports/generate", data=form).status_code == 400
        page = client.get(f"/reports/agreements/{report_month.agreement.id}/2026-10").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/reports/generate", data={**form, "csrf_token": token}).status_code == 302


def _wait_for(client, run_id):
    return poll_until_finished(client, f"/reports/runs/{run_id}/progress")


def test_month_batch_runs_in_background_with_progress(client, login, people, report_month, fast_render):
    login(client, people["admin"])
    resp = client.post("/reports/runs", data={"month": "2026-10"})
    assert resp.status_code == 302
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/reports/runs/{run_id}").get_data(as_text=True)
    assert f'data-run-progress="/reports/runs/{run_id}/progress"' in page and "js/reports.js" in page
    state = _wait_for(client, run_id)
    assert (state["status"], state["total"], state["done"], state["created"], state["failed"]) == ("done", 8, 8, 8, 0)
    assert state["percent"] == 100 and "新生成 8 份" in state["message"]
    # A second batch of the same month finds everything archived.
    run2 = int(client.post("/reports/runs", data={"month": "2026-10"}).headers["Location"].rsplit("/", 1)[1])
    assert _wait_for(client, run2)["created"] == 0
    assert db.session.execute(sa.select(sa.func.count()).select_from(MonthlyReport)).scalar() == 8


def test_only_admins_start_batches(client, login, people):
    login(client, people["reviewer"])
    assert client.post("/reports/runs", data={"month": "2026-10"}).status_code == 403


def test_a_live_batch_blocks_a_second_one_but_a_stale_one_does_not(app, people):
    admin = people["admin"]
    live = ops.start_report_run(2026, 10, actor=admin)
    db.session.commit()
    with pytest.raises(ops.ReportError, match="正在进行"):
        ops.start_report_run(2026, 9, actor=admin)
    db.session.rollback()
    db.session.execute(sa.update(ReportRun).where(ReportRun.id == live.id).values(
        updated_at=now_utc() - timedelta(hours=1)))
    db.session.commit()
    fresh = ops.start_report_run(2026, 9, actor=admin)
    db.session.commit()
    db.session.refresh(live)
    assert live.status is RunStatus.failed and "已中断" in live.message and fresh.status is RunStatus.running


def test_pages_have_no_inline_script(client, login, people, report_month, archived):
    login(client, people["admin"])
    for path in ("/reports/", f"/reports/agreements/{report_month.agreement.id}/2026-10",
                 f"/reports/organizations/{report_month.ops.id}/2026-10", "/reports/committee/2026-10"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=\"", html), path


def test_kind_label_on_model(app):
    assert ReportKind.committee.label == "党委月度报告"


def test_archive_pager_counts_only_when_the_page_cannot_tell(client, login, people, archived, monkeypatch):
    """Issue 10: a short page is the last one, so its total is known without a count; a full page counts."""
    from coop.reports import views

    monkeypatch.setattr(views, "PER_PAGE", 3)
    total = len(archived)  # every October report, all visible to an admin
    assert total in (7, 8)  # three pages, the last one short
    login(client, people["admin"])
    pages = [client.get(f"/reports/?page={p}").get_data(as_text=True) for p in (1, 2, 3, 4)]
    for p, html in enumerate(pages[:3], start=1):
        assert f"第 {p} / 3 页（共 {total} 条）" in html
    assert len(re.findall(r"/reports/(\d+)/download", pages[2])) == total - 6
    assert "/download" not in pages[3] and "还没有可查看的报告存档" in pages[3]  # beyond the end
    assert pages[0].count('<small class="muted">自动生成</small>') == 3  # who generated each
    monkeypatch.setattr(views, "PER_PAGE", 30)
    one = client.get("/reports/").get_data(as_text=True)
    assert len(re.findall(r"/reports/(\d+)/download", one)) == total and "页（共" not in one


def test_quick_links_follow_new_agreements_and_names_right_away(client, login, people, report_month, make_agreement):
    """The quick links to an organization's agreements of the month are memoised per data generation."""
    from coop.formatting import local_today

    today = local_today()
    school = report_month.school
    login(client, people["school_secretary"])
    html = client.get("/reports/").get_data(as_text=True)
    assert f"/reports/organizations/{school.id}/" in html and "新签的共建协议" not in html
    assert client.get("/reports/").get_data(as_text=True) == html
    fresh = make_agreement(parties=[school, report_month.ops], title="新签的共建协议",
                           starts_on=today - timedelta(days=400), ends_on=today + timedelta(days=400))
    html = client.get("/reports/").get_data(as_text=True)
    assert f'<a href="/reports/agreements/{fresh.id}/' in html and "新签的共建协议</a>" in html
    school.name = "华北能源大学团支部（改名）"
    db.session.commit()
    assert "华北能源大学团支部（改名）</a>" in client.get("/reports/").get_data(as_text=True)


def test_the_archive_filter_matches_the_permission_check(people, report_month, make_agreement, make_user, fast_render):
    """visible_reports_filter (the archive list's SQL) selects exactly the reports can_view_report allows — also for
    a reviewer whose own organization is a party (the subtree conditions cover it; the member's are left out)."""
    from coop.reports.jobs import generate_month
    from coop.reports.permissions import can_view_report, visible_reports_filter

    make_agreement(parties=[report_month.committee_org, report_month.cdc], title="党委与疾控中心共建协议")
    generate_month(2026, 10)
    reports = list(db.session.execute(sa.select(MonthlyReport)).scalars())
    users = dict(people, committee_secretary=make_user("secretary", org=report_month.committee_org),
                 reviewer_and_liaison=make_user("committee", "liaison", org=report_month.committee_org))
    for who, user in users.items():
        shown = set(db.session.execute(sa.select(MonthlyReport.id).where(visible_reports_filter(user))).scalars())
        assert shown == {r.id for r in reports if can_view_report(user, r)}, who
        assert shown or who == "outsider"


def test_a_month_before_the_term_says_the_term_has_not_started(client, login, people, report_month, make_agreement):
    later = make_agreement(parties=[report_month.ops, report_month.cdc], commitments={"study": 4},
                           starts_on=date(2027, 1, 1), ends_on=date(2027, 12, 31), title="明年起的共建协议")
    login(client, people["cdc_liaison"])
    html = client.get(f"/reports/agreements/{later.id}/2026-11").get_data(as_text=True)
    assert "本月尚未进入协议期限" in html and "期限未开始" in html
    study = re.search(r"党员联学</td>(.*?)</tr>", html, re.S).group(1)
    assert "期限未开始" in study and "未作约定" not in study and "尚未开展" not in study
