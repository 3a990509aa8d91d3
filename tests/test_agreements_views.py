"""Agreement screens: who sees what, the draft editor, the signing page, lists and the home panel."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from agreements import operations as ops
from agreements.models import Agreement, AgreementSignature, AgreementStatus, VersionState
from coop.extensions import db
from coop.formatting import local_today
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.usefixtures("fast_keys")


@pytest.fixture
def pair(make_party):
    return make_party("运维检修党支部", secretary_name="李红梅"), make_party("石家庄市疾病预防控制中心第一党支部", secretary_name="吴晓燕")


@pytest.fixture
def in_signing(pair, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    return agreement


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --- who sees what -------------------------------------------------------------------------------


def test_routes_need_a_login(client, make_agreement):
    agreement = make_agreement()
    for url in ("/agreements/", "/agreements/new", f"/agreements/{agreement.id}", f"/agreements/{agreement.id}/sign",
                f"/agreements/{agreement.id}/pdf"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url


def test_unrelated_secretary_can_neither_see_nor_sign(client, login, in_signing, make_party):
    stranger = make_party("无关党支部").secretary
    login(client, stranger)
    aid = in_signing.id
    # Answered like an id that does not exist, so outsiders cannot tell which agreements exist.
    assert client.get(f"/agreements/{aid}").status_code == 404
    assert client.get(f"/agreements/{aid + 1000}").status_code == 404
    assert client.get(f"/agreements/{aid}/pdf").status_code == 404
    assert client.get(f"/agreements/{aid}/sign").status_code == 404
    resp = client.post(f"/agreements/{aid}/sign", data={"password": DEFAULT_PASSWORD, "confirm": "y"})
    assert resp.status_code == 404
    assert client.post(f"/agreements/{aid}/decline", data={"decline-reason": "x"}).status_code == 404
    assert in_signing.title not in text(client.get("/agreements/"))
    assert db.session.execute(sa.select(sa.func.count()).select_from(AgreementSignature)).scalar_one() == 0


def test_a_partys_liaison_sees_but_cannot_sign(client, login, in_signing, pair):
    login(client, pair[0].liaison)
    aid = in_signing.id
    page = text(client.get(f"/agreements/{aid}"))
    assert "运维检修党支部" in page and f"/agreements/{aid}/sign" not in page
    assert client.get(f"/agreements/{aid}/sign").status_code == 403
    assert client.post(f"/agreements/{aid}/sign", data={"password": DEFAULT_PASSWORD, "confirm": "y"}).status_code == 403
    assert client.post(f"/agreements/{aid}/terminate", data={"reason": "x"}).status_code == 403
    assert in_signing.signing_version.signatures == []


def test_reviewer_over_a_party_sees_it_and_others_do_not(client, login, make_org, make_party, make_user, make_agreement):
    committee = make_org("电力公司党委", kind="committee")
    inside = make_party("营销服务党支部", parent=committee)
    agreement = make_agreement(parties=[inside.org, make_party().org])
    login(client, make_user("committee", org=committee))
    assert client.get(f"/agreements/{agreement.id}").status_code == 200
    other_committee = make_org("物流公司党委", kind="committee")
    client2 = client.application.test_client()
    login(client2, make_user("committee", org=other_committee))
    assert client2.get(f"/agreements/{agreement.id}").status_code == 404


# --- the editor ----------------------------------------------------------------------------------


def form_data(a, b, **extra):
    start = local_today()
    data = {
        "title": "运维检修党支部与疾控中心第一党支部结对共建协议",
        "number": "共建〔2026〕1号",
        "parties-0": str(a.id), "parties-1": str(b.id), "parties-2": "",
        "starts_on": start.isoformat(), "ends_on": (start + timedelta(days=364)).isoformat(),
        "purpose": "以党建共建促进业务融合。",
        "count_study": "4", "text_study": "书记送课上门 2 次",
        "count_service": "2", "text_service": "",
        "clauses": "各方建立联席会议制度。\n\n本协议经各方签署后生效。",
    }
    data.update(extra)
    return data


def test_new_draft_from_a_template(client, login, pair):
    a, b = pair
    login(client, a.secretary)
    page = text(client.get("/agreements/new?template=school_youth"))
    assert "校企团建共建协议" in page and "人才联育" in page
    assert f'<option selected value="{a.org.id}">' in page  # the drafter's own organization is 甲方
    resp = client.post("/agreements/new?template=branch_pairing", data=form_data(a.org, b.org))
    assert resp.status_code == 302
    agreement = db.session.execute(sa.select(Agreement)).scalar_one()
    assert agreement.status is AgreementStatus.draft and agreement.template_code == "branch_pairing"
    assert agreement.party_org_ids == [a.org.id, b.org.id]
    assert {c.category: c.count_per_year for c in agreement.commitments} == {"study": 4, "service": 2}
    assert agreement.clauses == ["各方建立联席会议制度。", "本协议经各方签署后生效。"]
    assert agreement.liaison_user_ids() == {a.liaison.id, b.liaison.id}


def test_editor_refuses_one_party_and_bad_term(client, login, pair):
    a, b = pair
    login(client, a.secretary)
    page = text(client.post("/agreements/new", data=form_data(a.org, b.org, **{"parties-1": ""})))
    assert "请至少选择两个共建方" in page
    page = text(client.post("/agreements/new", data=form_data(a.org, b.org, ends_on="2000-01-01")))
    assert "结束日期不能早于开始日期" in page
    page = text(client.post("/agreements/new", data=form_data(a.org, b.org, count_study="", count_service="")))
    assert "请至少在一个" in page
    page = text(client.post("/agreements/new", data=form_data(a.org, b.org, starts_on="2026-02-30")))
    assert "“2026-02-30”不是有效的日期" in page and "请填写开始日期" not in page
    page = text(client.post("/agreements/new", data=form_data(a.org, b.org, starts_on="")))
    assert "请填写开始日期" in page
    assert db.session.execute(sa.select(sa.func.count()).select_from(Agreement)).scalar_one() == 0


def test_edit_draft_liaisons_per_party(client, login, pair, make_user, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    db.session.commit()
    second = make_user("liaison", org=b.org, display_name="郑凯")
    login(client, a.secretary)
    page = text(client.get(f"/agreements/{agreement.id}/edit"))
    assert "郑凯" in page and f'value="{b.org.id}:{second.id}"' in page
    data = form_data(a.org, b.org, liaison_orgs=[str(a.org.id), str(b.org.id)],
                     liaisons=[f"{b.org.id}:{second.id}"])
    assert client.post(f"/agreements/{agreement.id}/edit", data=data).status_code == 302
    db.session.refresh(agreement)
    assert agreement.liaison_user_ids(b.org.id) == {second.id}
    assert agreement.liaison_user_ids(a.org.id) == set()  # the list was shown and nobody ticked


def test_only_drafters_edit(client, login, pair, make_party, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    db.session.commit()
    login(client, a.liaison)
    assert client.get(f"/agreements/{agreement.id}/edit").status_code == 403
    assert client.post(f"/agreements/{agreement.id}/submit").status_code == 403


# --- signing screens -----------------------------------------------------------------------------


def test_sign_page_works_for_the_secretary(client, login, in_signing, pair):
    a, b = pair
    login(client, b.secretary)
    page = text(client.get(f"/agreements/{in_signing.id}/sign"))
    assert 'name="viewport"' in page and "阅读协议全文（PDF）" in page and "党员联学" in page
    assert 'type="password"' in page and "拒签" in page
    start = in_signing.starts_on
    assert f"{start.year}年{start.month}月{start.day}日 至" in page and start.isoformat() not in page
    resp = client.post(f"/agreements/{in_signing.id}/sign", data={"password": "nope-nope1", "confirm": "y"})
    assert "密码不正确" in text(resp)
    assert in_signing.signing_version.signatures == []
    resp = client.post(f"/agreements/{in_signing.id}/sign", data={"password": DEFAULT_PASSWORD, "confirm": "y"},
                       environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert resp.status_code == 302
    sig = db.session.execute(sa.select(AgreementSignature)).scalar_one()
    assert sig.signer_id == b.secretary.id and sig.ip == "192.0.2.7"
    page = text(client.get(f"/agreements/{in_signing.id}"))
    assert "已签 1/2" in page


def test_signing_lock_says_how_long_it_lasts(app, client, login, in_signing, pair):
    login(client, pair[1].secretary)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post(f"/agreements/{in_signing.id}/sign", data={"password": "nope-nope1", "confirm": "y"})
    page = text(client.post(f"/agreements/{in_signing.id}/sign", data={"password": DEFAULT_PASSWORD, "confirm": "y"}))
    minutes = app.config["LOGIN_LOCK_MINUTES"]
    assert f"请 {minutes} 分钟后再试" in page and "签署和登录暂停" in page
    assert in_signing.signing_version.signatures == []


def test_decline_from_the_sign_page(client, login, in_signing, pair):
    login(client, pair[1].secretary)
    resp = client.post(f"/agreements/{in_signing.id}/decline", data={"decline-reason": "请增加服务联动次数"})
    assert resp.status_code == 302
    db.session.refresh(in_signing)
    assert in_signing.status is AgreementStatus.draft
    assert in_signing.versions[0].state is VersionState.declined
    assert "请增加服务联动次数" in text(client.get(f"/agreements/{in_signing.id}"))


def test_terminate_renew_amend_screens(client, login, signed_agreement):
    s = signed_agreement()
    a, b = s.parties
    aid = s.agreement.id
    login(client, a.secretary)
    page = text(client.get(f"/agreements/{aid}"))
    for label in ("发起修订", "续签", "终止协议", "下载 PDF", "签署完成证明", "李红梅", "吴晓燕", "10.0.0.1"):
        assert label in page, label
    pdf = client.get(f"/agreements/{aid}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Cache-Control"] == "private, no-store"

    assert client.post(f"/agreements/{aid}/amend").status_code == 302
    page = text(client.get(f"/agreements/{aid}/amendment"))
    assert "修订说明" in page and "共建方不能在修订中增减" in page
    data = form_data(a.org, b.org, title=s.agreement.title, count_culture="2", note="增加文化联创",
                     liaison_orgs=[str(a.org.id), str(b.org.id)])
    data.pop("parties-0"), data.pop("parties-1")
    assert client.post(f"/agreements/{aid}/amendment", data=data).status_code == 302
    assert client.get(f"/agreements/{aid}/preview.pdf").data.startswith(b"%PDF-")
    assert client.post(f"/agreements/{aid}/amendment/submit").status_code == 302
    db.session.refresh(s.agreement)
    assert s.agreement.signing_version.note == "增加文化联创"
    assert s.agreement.commitment_for("culture") is None  # not before everyone signed

    resp = client.post(f"/agreements/{aid}/terminate", data={"reason": ""})
    assert "请填写理由" in text(resp)
    assert client.post(f"/agreements/{aid}/terminate", data={"reason": "机构调整"}).status_code == 302
    db.session.refresh(s.agreement)
    assert s.agreement.status is AgreementStatus.terminated
    assert s.agreement.versions[-1].state is VersionState.withdrawn


def test_renew_screen_opens_the_new_draft(client, login, pair, make_agreement):
    a, b = pair
    agreement = make_agreement(parties=[a.org, b.org], status="expired")
    login(client, b.secretary)
    resp = client.post(f"/agreements/{agreement.id}/renew")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/edit")
    renewal = db.session.execute(sa.select(Agreement).where(Agreement.renewed_from_id == agreement.id)).scalar_one()
    assert renewal.status is AgreementStatus.draft
    # Renewing twice is refused with the reason shown.
    resp = client.post(f"/agreements/{agreement.id}/renew", follow_redirects=True)
    assert "已发起续签" in text(resp)


def test_detail_shows_secretaries_and_renewal_right_after_they_change(client, login, pair, make_agreement, make_user):
    """The parties' secretaries and the renewal link are memoised per data generation (issue 10): a new
    secretary, a renamed one and a renewal show on the very next view."""
    a, b = pair
    agreement = make_agreement(parties=[a.org, b.org], status="expired")
    login(client, b.secretary)
    page = text(client.get(f"/agreements/{agreement.id}"))
    assert "李红梅" in page and "吴晓燕" in page and "续签协议" not in page
    assert f"/agreements/{agreement.id}/renew" in page  # the 续签 button
    make_user("secretary", org=a.org, username="new_sj", display_name="赵新书记")
    b.secretary.display_name = "吴晓燕（改）"
    db.session.commit()
    page = text(client.get(f"/agreements/{agreement.id}"))
    assert "赵新书记" in page and "吴晓燕（改）" in page
    assert client.post(f"/agreements/{agreement.id}/renew").status_code == 302
    page = text(client.get(f"/agreements/{agreement.id}"))
    assert "续签协议" in page and f"/agreements/{agreement.id}/renew" not in page


def test_buttons_follow_the_state_and_routes_refuse_the_rest(client, login, pair, make_agreement):
    a, b = pair
    agreement = make_agreement(parties=[a.org, b.org], status="active")
    login(client, a.secretary)
    page = text(client.get(f"/agreements/{agreement.id}"))
    assert "发起修订" in page and "提交签署" not in page and "编辑草稿" not in page
    assert client.post(f"/agreements/{agreement.id}/submit").status_code == 403
    assert client.get(f"/agreements/{agreement.id}/edit").status_code == 403
    ops.expire_due_agreements(agreement.ends_on + timedelta(days=1))
    db.session.commit()
    page = text(client.get(f"/agreements/{agreement.id}"))
    assert "发起修订" not in page and "续签" in page and "终止协议" not in page
    assert client.post(f"/agreements/{agreement.id}/amend").status_code == 403
    assert client.post(f"/agreements/{agreement.id}/terminate", data={"reason": "x"}).status_code == 403


# --- list, home, nav -----------------------------------------------------------------------------


def test_list_filters_and_pagination(client, login, pair, make_agreement):
    a, b = pair
    today = local_today()
    soon = make_agreement(parties=[a.org, b.org], status="active", title="即将到期的协议",
                          starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=10))
    make_agreement(parties=[a.org, b.org], status="draft", title="草稿协议",
                   starts_on=today, ends_on=today + timedelta(days=300))
    for i in range(22):
        make_agreement(parties=[a.org, b.org], status="active", title=f"长期协议{i:02d}",
                       starts_on=today, ends_on=today + timedelta(days=700))
    login(client, a.secretary)
    page = text(client.get("/agreements/?expiring=y"))
    assert "即将到期的协议" in page and "长期协议" not in page and "10 天后到期" in page
    page = text(client.get("/agreements/?status=draft"))
    assert "草稿协议" in page and "即将到期的协议" not in page
    page = text(client.get("/agreements/?status=active"))
    assert "第 1 / 2 页" in page
    page2 = text(client.get("/agreements/?status=active&page=2"))
    assert page2.count("agr-item-head") == 23 - 20
    page = text(client.get(f"/agreements/?party={b.org.id}&q=草稿"))
    assert "草稿协议" in page and "长期协议" not in page


def test_home_panel_and_nav(client, login, in_signing, pair, make_agreement):
    a, b = pair
    today = local_today()
    make_agreement(parties=[a.org, b.org], status="active", title="下月到期的协议",
                   starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=20))
    login(client, b.secretary)
    page = text(client.get("/"))
    assert "待您签署" in page and in_signing.title in page and "下月到期的协议" in page
    assert 'href="/agreements/"' in page and ">协议<" in page
    client2 = client.application.test_client()
    login(client2, a.liaison)
    page = text(client2.get("/"))
    assert "待您签署" not in page and "下月到期的协议" in page


def test_profile_lists_signing_certificates(client, login, pair):
    from agreements.signatures import signer_key_for

    a, _b = pair
    signer_key_for(a.secretary, a.org.name, DEFAULT_PASSWORD)
    db.session.commit()
    login(client, a.secretary)
    page = text(client.get("/profile"))
    assert "协议签名证书" in page and "运维检修党支部" in page and "可用" in page
    login(client, a.liaison)
    assert "协议签名证书" not in text(client.get("/profile"))


def test_a_signed_agreement_whose_term_has_not_begun_says_when_it_starts(client, login, pair, make_agreement):
    """A renewal signed before the old term ends is not yet in force: the list and the page say from when."""
    a, b = pair
    today = local_today()
    later = make_agreement(parties=[a.org, b.org], status="active", title="明年的续签协议",
                           starts_on=today + timedelta(days=25), ends_on=today + timedelta(days=390))
    make_agreement(parties=[a.org, b.org], status="active", title="今年的协议",
                   starts_on=today - timedelta(days=340), ends_on=today + timedelta(days=24))
    login(client, a.secretary)
    starts = f"已签署，{later.starts_on.year}年{later.starts_on.month}月{later.starts_on.day}日起生效"
    listing = text(client.get("/agreements/"))
    head = listing[listing.index("明年的续签协议"):]
    assert head[:head.index("今年的协议") if "今年的协议" in head else None].count(starts) == 1
    assert "生效中" in listing  # the current one
    page = text(client.get(f"/agreements/{later.id}"))
    assert starts in page
