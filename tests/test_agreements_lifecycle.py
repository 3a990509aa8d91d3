"""The life of an agreement, through its operations: draft → signing → active → expired / terminated,
decline, recall, renewal, amendment, every illegal move, signer keys and the queries others use."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from agreements import operations as ops
from agreements.content import content_of
from agreements.models import (
    TRANSITIONS,
    Agreement,
    AgreementSignature,
    AgreementStatus,
    IllegalTransition,
    SignerKey,
    VersionKind,
    VersionState,
)
from agreements.presets import TEMPLATE_BY_CODE, TEMPLATES, one_year_from
from agreements.queries import (
    active_agreements_for_org,
    agreements_visible_to,
    awaiting_signature,
    expiring_between,
)
from agreements.signatures import archive_path, sha256_hex
from coop.audit.models import AuditEntry
from coop.auth.operations import change_password, reset_password
from coop.extensions import db
from coop.formatting import local_today
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.usefixtures("fast_keys")


def kinds(agreement) -> list[str]:
    return list(db.session.execute(
        sa.select(AuditEntry.kind).where(AuditEntry.target_type == "Agreement", AuditEntry.target_id == agreement.id)
        .order_by(AuditEntry.id)).scalars())


@pytest.fixture
def pair(make_party):
    return make_party("运维检修党支部", secretary_name="李红梅"), make_party("石家庄市疾病预防控制中心第一党支部", secretary_name="吴晓燕")


# --- drafting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.code)
def test_every_template_gives_a_valid_draft(template, pair):
    a, b = pair
    content = template.content(party_ids=[a.org.id, b.org.id], starts_on=date(2026, 3, 1))
    assert content.ends_on == date(2027, 2, 28)
    agreement = ops.create_draft(content, actor=a.secretary, template_code=template.code)
    db.session.commit()
    assert agreement.status is AgreementStatus.draft
    assert agreement.template_code == template.code
    assert {c.category for c in agreement.commitments} == set(template.commitments)
    # Nobody typed liaisons: each party's liaison-role users are proposed.
    assert agreement.liaison_user_ids(a.org.id) == {a.liaison.id}
    assert agreement.liaison_user_ids(b.org.id) == {b.liaison.id}
    assert kinds(agreement) == ["agreement.draft"]


def test_branch_template_commits_to_four_joint_studies():
    study = TEMPLATE_BY_CODE["branch_pairing"].commitments["study"]
    assert study[0] == 4 and "书记送课上门" in study[1]


@pytest.mark.parametrize("change, message", [
    (dict(party_ids="one"), "至少需要两个共建方"),
    (dict(ends_on=date(2025, 1, 1)), "结束日期不能早于开始日期"),
    (dict(commitments={"study": (0, "")}), "至少在一个"),
    (dict(commitments={"study": (400, "")}), "之间"),
    (dict(title="  "), "协议名称"),
])
def test_invalid_drafts_are_refused_in_chinese(pair, agreement_content, change, message):
    a, b = pair
    if change.get("party_ids") == "one":
        change = dict(party_ids=[a.org.id])
    with pytest.raises(ops.AgreementInvalid, match=message):
        ops.create_draft(agreement_content(a.org, b.org, **change), actor=a.secretary)


def test_liaison_must_belong_to_the_party(pair, agreement_content):
    a, b = pair
    content = agreement_content(a.org, b.org, liaisons={a.org.id: [b.liaison.id], b.org.id: []})
    with pytest.raises(ops.AgreementInvalid, match="不属于"):
        ops.create_draft(content, actor=a.secretary)


def test_who_may_draft(pair, make_party, make_user, make_org, agreement_content):
    a, b = pair
    other = make_party("无关党支部")
    with pytest.raises(ops.NotAllowed):
        ops.create_draft(agreement_content(a.org, b.org), actor=other.secretary)
    with pytest.raises(ops.NotAllowed):
        ops.create_draft(agreement_content(a.org, b.org), actor=a.liaison)
    # A committee reviewer drafts when a party lies in the subtree.
    committee_org = make_org("电力公司党委", kind="committee")
    child = make_party("营销服务党支部", parent=committee_org)
    reviewer = make_user("committee", org=committee_org)
    agreement = ops.create_draft(agreement_content(child.org, b.org), actor=reviewer)
    assert agreement.created_by_id == reviewer.id
    with pytest.raises(ops.NotAllowed):
        ops.create_draft(agreement_content(a.org, b.org), actor=reviewer)


def test_drafters_edit_and_others_do_not(pair, make_party, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    db.session.commit()
    new = content_of(agreement)
    new.commitments["service"] = (3, "走访敬老院")
    new.title = "运维检修与疾控党建结对共建协议"
    ops.update_draft(agreement, new, actor=b.secretary)  # the partner's secretary is a drafter too
    db.session.commit()
    assert agreement.commitment_for("service").count_per_year == 3
    assert agreement.title == "运维检修与疾控党建结对共建协议"
    entry = db.session.execute(sa.select(AuditEntry).where(AuditEntry.kind == "agreement.edit")).scalar_one()
    assert "commitments" in entry.detail["changed"] and "title" in entry.detail["changed"]
    for outsider in (a.liaison, make_party("无关党支部").secretary):
        with pytest.raises(ops.NotAllowed):
            ops.update_draft(agreement, new, actor=outsider)
    # A drafter cannot edit their own organization out of the draft.
    third = make_party("第三方党支部")
    without_me = content_of(agreement)
    without_me.party_ids = [b.org.id, third.org.id]
    with pytest.raises(ops.NotAllowed, match="须包含您的组织"):
        ops.update_draft(agreement, without_me, actor=a.secretary)


# --- signing -------------------------------------------------------------------------------------


def test_full_signing_walk(pair, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    db.session.commit()
    version = ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    assert agreement.status is AgreementStatus.signing
    assert version.state is VersionState.signing and version.kind is VersionKind.original
    unsigned = archive_path(version.pdf_path).read_bytes()
    assert unsigned.startswith(b"%PDF-") and sha256_hex(unsigned) == version.unsigned_sha256
    assert version.content["parties"][0]["name"] == "运维检修党支部"
    assert version.verify_code and len(version.signature_boxes) == 2

    with pytest.raises(ops.WrongPassword, match="密码不正确"):
        ops.sign_agreement(agreement, actor=b.secretary, password="wrong-pass1", ip="10.0.0.2")
    db.session.rollback()

    first = ops.sign_agreement(agreement, actor=b.secretary, password=DEFAULT_PASSWORD, ip="10.0.0.2")
    db.session.commit()
    assert first.sha256_before == version.unsigned_sha256
    assert first.sha256_after == version.pdf_sha256 != version.unsigned_sha256
    assert first.ip == "10.0.0.2" and first.signer_name == "吴晓燕"
    assert agreement.status is AgreementStatus.signing
    with pytest.raises(ops.AgreementError, match="已签署"):
        ops.sign_agreement(agreement, actor=b.secretary, password=DEFAULT_PASSWORD, ip="10.0.0.2")
    db.session.rollback()

    ops.sign_agreement(agreement, actor=a.secretary, password=DEFAULT_PASSWORD, ip="10.0.0.1")
    db.session.commit()
    assert agreement.status is AgreementStatus.active
    assert agreement.activated_at is not None
    assert version.state is VersionState.signed and agreement.current_version is version
    final = archive_path(version.pdf_path).read_bytes()
    assert sha256_hex(final) == version.final_sha256 == version.pdf_sha256
    assert final.startswith(unsigned[:100])  # incremental: the original bytes are still there
    assert archive_path(version.certificate_path).read_bytes().startswith(b"%PDF-")
    # Each signer got a key, protected by their password, on first signature.
    assert db.session.execute(sa.select(sa.func.count()).select_from(SignerKey)).scalar_one() == 2
    assert kinds(agreement) == ["agreement.draft", "agreement.submit", "agreement.sign", "agreement.sign",
                                "agreement.activate"]


def test_only_a_partys_own_secretary_signs(pair, make_party, make_user, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    stranger = make_party("无关党支部").secretary
    admin = make_user("admin")
    for person in (stranger, a.liaison, admin):
        with pytest.raises(ops.NotAllowed, match="书记本人"):
            ops.sign_agreement(agreement, actor=person, password=DEFAULT_PASSWORD, ip=None)
        db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count()).select_from(AgreementSignature)).scalar_one() == 0


def test_fixed_signing_order(pair, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org, signing_order_fixed=True), actor=a.secretary)
    version = ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    assert version.next_signer_org_ids() == [a.org.id]
    with pytest.raises(ops.NotAllowed, match="按顺序签署"):
        ops.sign_agreement(agreement, actor=b.secretary, password=DEFAULT_PASSWORD, ip=None)
    db.session.rollback()
    [(ag, org_id, since)] = awaiting_signature()
    assert (ag.id, org_id, since) == (agreement.id, a.org.id, version.submitted_at)
    signature = ops.sign_agreement(agreement, actor=a.secretary, password=DEFAULT_PASSWORD, ip=None)
    db.session.commit()
    # Now it is 乙方's turn, waiting since 甲方 signed.
    assert awaiting_signature(b.org.id) == [(agreement, b.org.id, signature.signed_at)]
    assert awaiting_signature(a.org.id) == []


def test_decline_returns_to_draft_and_resubmission_is_a_new_version(pair, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    first = ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    ops.sign_agreement(agreement, actor=a.secretary, password=DEFAULT_PASSWORD, ip=None)
    db.session.commit()
    with pytest.raises(ops.AgreementError, match="已签署本协议，不能再拒签"):
        ops.decline_signing(agreement, actor=a.secretary, reason="改主意")
    db.session.rollback()
    with pytest.raises(ops.AgreementInvalid, match="拒签理由"):
        ops.decline_signing(agreement, actor=b.secretary, reason="  ")
    db.session.rollback()
    ops.decline_signing(agreement, actor=b.secretary, reason="服务联动次数需要增加")
    db.session.commit()
    assert agreement.status is AgreementStatus.draft
    assert first.state is VersionState.declined and first.declined_org_id == b.org.id
    assert first.close_reason == "服务联动次数需要增加"
    assert awaiting_signature() == []

    content = content_of(agreement)
    content.commitments["service"] = (4, "")
    ops.update_draft(agreement, content, actor=a.secretary)
    second = ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    assert second.number == 2 and second.verify_code != first.verify_code
    assert second.signatures == []  # the earlier signature belonged to the declined text
    assert "decline" in " ".join(kinds(agreement))


def test_recall_from_signing(pair, agreement_content):
    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    version = ops.submit_for_signing(agreement, actor=a.secretary)
    ops.recall_signing(agreement, actor=a.secretary, reason="发现错别字")
    db.session.commit()
    assert agreement.status is AgreementStatus.draft and version.state is VersionState.withdrawn


def test_submit_refuses_a_party_without_secretary(make_party, agreement_content):
    a = make_party("运维检修党支部")
    b = make_party("无书记党支部", secretary=False)
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    with pytest.raises(ops.AgreementInvalid, match="还没有书记账号"):
        ops.submit_for_signing(agreement, actor=a.secretary)


# --- end of life ---------------------------------------------------------------------------------


def test_expire_due_agreements(make_agreement, make_party):
    a, b = make_party(), make_party()
    due = make_agreement(parties=[a.org, b.org], status="active", ends_on=date(2026, 6, 30))
    last_day = make_agreement(parties=[a.org, b.org], status="active", ends_on=date(2026, 7, 1))
    draft = make_agreement(parties=[a.org, b.org], status="draft", ends_on=date(2026, 1, 31))
    expired = ops.expire_due_agreements(date(2026, 7, 1))
    db.session.commit()
    assert expired == [due]
    assert due.status is AgreementStatus.expired and due.end_reason == "协议期满"
    assert last_day.status is AgreementStatus.active  # its last day is still inside the term
    assert draft.status is AgreementStatus.draft
    assert ops.expire_due_agreements(date(2026, 7, 1)) == []  # idempotent
    assert kinds(due) == ["agreement.expire"]


def test_terminate_with_reason_by_a_partys_secretary(make_party, make_agreement):
    a, b = make_party(), make_party()
    agreement = make_agreement(parties=[a.org, b.org], status="active")
    for outsider in (a.liaison, make_party("无关党支部").secretary):
        with pytest.raises(ops.NotAllowed):
            ops.terminate_agreement(agreement, actor=outsider, reason="不再共建")
    with pytest.raises(ops.AgreementInvalid, match="终止理由"):
        ops.terminate_agreement(agreement, actor=b.secretary, reason="")
    ops.terminate_agreement(agreement, actor=b.secretary, reason="单位机构调整")
    db.session.commit()
    assert agreement.status is AgreementStatus.terminated
    assert agreement.end_reason == "单位机构调整" and agreement.ended_by_id == b.secretary.id
    assert kinds(agreement) == ["agreement.terminate"]


def test_a_drafter_may_abandon_a_draft_but_not_terminate_an_active_agreement(make_party, make_org, make_user,
                                                                                agreement_content):
    committee = make_org("电力公司党委", kind="committee")
    a, b = make_party("营销服务党支部", parent=committee), make_party()
    reviewer = make_user("committee", org=committee)
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=reviewer)
    db.session.commit()
    ops.terminate_agreement(agreement, actor=reviewer, reason="重复起草")
    assert agreement.status is AgreementStatus.terminated
    active = ops.create_draft(agreement_content(a.org, b.org), actor=reviewer)
    active.status = AgreementStatus.active
    with pytest.raises(ops.NotAllowed, match="书记"):
        ops.terminate_agreement(active, actor=reviewer, reason="不再共建")


def test_renewal_carries_the_content_over(make_party, make_agreement):
    a, b = make_party(), make_party()
    start = local_today() - timedelta(days=200)
    old = make_agreement(parties=[a.org, b.org], status="active", starts_on=start, ends_on=one_year_from(start),
                         liaisons={a.org: [a.liaison], b.org: [b.liaison]}, commitments={"study": 4, "service": 2})
    renewal = ops.renew_agreement(old, actor=b.secretary)
    db.session.commit()
    assert renewal.status is AgreementStatus.draft and renewal.renewed_from_id == old.id
    assert renewal.starts_on == old.ends_on + timedelta(days=1)
    assert renewal.ends_on == one_year_from(renewal.starts_on)
    assert renewal.party_org_ids == old.party_org_ids
    assert {c.category: c.count_per_year for c in renewal.commitments} == {"study": 4, "service": 2}
    assert renewal.liaison_user_ids() == {a.liaison.id, b.liaison.id}
    assert old.status is AgreementStatus.active  # the old term runs to its end
    assert kinds(old) == ["agreement.renew"] and kinds(renewal) == ["agreement.draft"]
    with pytest.raises(ops.AgreementError, match="已发起续签"):
        ops.renew_agreement(old, actor=a.secretary)


def test_amendment_is_signed_again_and_counts_only_when_complete(signed_agreement):
    s = signed_agreement()
    agreement, (a, b) = s.agreement, s.parties
    original = s.version
    version = ops.start_amendment(agreement, actor=a.secretary, note="增加服务联动")
    db.session.commit()
    with pytest.raises(ops.AgreementError, match="已有一份修订"):
        ops.start_amendment(agreement, actor=b.secretary)
    db.session.rollback()

    content = content_of(agreement)
    content.commitments["service"] = (6, "走访敬老院")
    content.commitments["study"] = (5, "书记送课上门 3 次")
    ops.update_amendment(agreement, content, actor=b.secretary)
    moved = content_of(agreement)
    moved.party_ids = list(reversed(moved.party_ids))
    with pytest.raises(ops.AgreementInvalid, match="不能更改共建方"):
        ops.update_amendment(agreement, moved, actor=a.secretary)
    ops.submit_amendment(agreement, actor=a.secretary)
    db.session.commit()
    assert version.state is VersionState.signing

    ops.sign_agreement(agreement, actor=a.secretary, password=DEFAULT_PASSWORD, ip=None)
    db.session.commit()
    # Half-signed amendment: the agreement still counts under the text in force.
    assert agreement.status is AgreementStatus.active
    assert agreement.commitment_for("service") is None
    assert agreement.commitment_for("study").count_per_year == 4
    assert agreement.current_version is original
    original_file = archive_path(original.pdf_path).read_bytes()

    ops.sign_agreement(agreement, actor=b.secretary, password=DEFAULT_PASSWORD, ip=None)
    db.session.commit()
    assert agreement.commitment_for("service").count_per_year == 6
    assert agreement.commitment_for("study").count_per_year == 5
    assert agreement.current_version is version and version.state is VersionState.signed
    assert original.state is VersionState.superseded
    # The signed original is never touched: same file, same hash.
    assert sha256_hex(original_file) == original.final_sha256
    assert {c["category"]: c["count_per_year"] for c in original.content["commitments"]}["study"] == 4
    assert "agreement.amendment_active" in kinds(agreement)


def test_declined_amendment_goes_back_to_draft_and_can_be_withdrawn(signed_agreement):
    s = signed_agreement()
    agreement, (a, b) = s.agreement, s.parties
    ops.start_amendment(agreement, actor=a.secretary)
    content = content_of(agreement)
    content.commitments["mass"] = (2, "")
    ops.update_amendment(agreement, content, actor=a.secretary)
    declined = ops.submit_amendment(agreement, actor=a.secretary)
    ops.decline_signing(agreement, actor=b.secretary, reason="群团活动次数过多")
    db.session.commit()
    assert declined.state is VersionState.declined
    redo = agreement.pending_version
    assert redo.state is VersionState.draft and redo.number == declined.number + 1
    assert redo.content == declined.content
    assert agreement.status is AgreementStatus.active
    ops.withdraw_amendment(agreement, actor=b.secretary)
    db.session.commit()
    assert agreement.pending_version is None and agreement.current_version is s.version


def test_unchanged_amendment_is_not_sent(signed_agreement):
    s = signed_agreement()
    ops.start_amendment(s.agreement, actor=s.parties[0].secretary)
    with pytest.raises(ops.AgreementInvalid, match="完全相同"):
        ops.submit_amendment(s.agreement, actor=s.parties[0].secretary)


# --- illegal moves -------------------------------------------------------------------------------


ALL = list(AgreementStatus)


@pytest.mark.parametrize("start, target", [(s, t) for s in ALL for t in ALL if t not in TRANSITIONS[s]],
                         ids=lambda v: v.value)
def test_model_refuses_every_illegal_transition(start, target):
    agreement = Agreement(title="x", status=start, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    with pytest.raises(IllegalTransition, match=f"不能变为“{target.label}”"):
        agreement.move_to(target)
    assert agreement.status is start


def _attempt(action, agreement, party, content):
    actor = party.secretary
    return {
        "edit": lambda: ops.update_draft(agreement, content, actor=actor),
        "submit": lambda: ops.submit_for_signing(agreement, actor=actor),
        "recall": lambda: ops.recall_signing(agreement, actor=actor),
        "sign": lambda: ops.sign_agreement(agreement, actor=actor, password=DEFAULT_PASSWORD, ip=None),
        "decline": lambda: ops.decline_signing(agreement, actor=actor, reason="不同意"),
        "terminate": lambda: ops.terminate_agreement(agreement, actor=actor, reason="结束"),
        "renew": lambda: ops.renew_agreement(agreement, actor=actor),
        "amend": lambda: ops.start_amendment(agreement, actor=actor),
        "edit_amendment": lambda: ops.update_amendment(agreement, content, actor=actor),
        "submit_amendment": lambda: ops.submit_amendment(agreement, actor=actor),
        "withdraw_amendment": lambda: ops.withdraw_amendment(agreement, actor=actor),
    }[action]()


ILLEGAL = [
    ("edit", ["signing", "active", "expired", "terminated"]),
    ("submit", ["signing", "active", "expired", "terminated"]),
    ("recall", ["draft", "active", "expired", "terminated"]),
    ("sign", ["draft", "active", "expired", "terminated"]),
    ("decline", ["draft", "active", "expired", "terminated"]),
    ("terminate", ["expired", "terminated"]),
    ("renew", ["draft", "signing", "terminated"]),
    ("amend", ["draft", "signing", "expired", "terminated"]),
    ("edit_amendment", ["draft", "signing", "active", "expired", "terminated"]),
    ("submit_amendment", ["draft", "signing", "active", "expired", "terminated"]),
    ("withdraw_amendment", ["draft", "signing", "active", "expired", "terminated"]),
]


@pytest.mark.parametrize("action, status", [(a, s) for a, states in ILLEGAL for s in states],
                         ids=lambda v: v)
def test_illegal_moves_are_refused_with_a_clear_message(action, status, make_agreement, make_party):
    a, b = make_party(), make_party()
    agreement = make_agreement(parties=[a.org, b.org], status=status, starts_on=local_today(),
                               ends_on=local_today() + timedelta(days=365))
    content = content_of(agreement)
    with pytest.raises(IllegalTransition) as info:
        _attempt(action, agreement, a, content)
    assert "不能" in str(info.value)
    db.session.rollback()
    assert db.session.get(Agreement, agreement.id).status is AgreementStatus(status)


# --- signer keys follow the password -------------------------------------------------------------


def test_password_change_rewraps_and_reset_discards_the_signer_key(signed_agreement, make_user):
    from agreements.pki import WrongSignerPassword, load_private_key

    s = signed_agreement()
    signer = s.parties[0].secretary
    key = db.session.execute(sa.select(SignerKey).where(SignerKey.user_id == signer.id)).scalar_one()
    old_pem = key.key_pem
    change_password(signer, old_password=DEFAULT_PASSWORD, new_password="NewPassw0rd!", keep_token=None)
    db.session.commit()
    assert key.key_pem != old_pem and key.revoked_at is None
    load_private_key(key.key_pem.encode(), "NewPassw0rd!")
    with pytest.raises(WrongSignerPassword):
        load_private_key(key.key_pem.encode(), DEFAULT_PASSWORD)

    admin = make_user("admin")
    reset_password(signer, actor=admin, new_password="Reset0Passw0rd")
    db.session.commit()
    assert key.key_pem is None and key.revoked_at is not None and key.revoke_reason == "管理员重置密码"

    # The next signature issues a fresh key under the new password.
    s2 = s.agreement
    ops.start_amendment(s2, actor=signer)
    content = content_of(s2)
    content.commitments["culture"] = (1, "")
    ops.update_amendment(s2, content, actor=signer)
    ops.submit_amendment(s2, actor=signer)
    sig = ops.sign_agreement(s2, actor=signer, password="Reset0Passw0rd", ip=None)
    db.session.commit()
    fresh = db.session.execute(sa.select(SignerKey).where(SignerKey.user_id == signer.id,
                                                          SignerKey.revoked_at.is_(None))).scalar_one()
    assert fresh.id != key.id and sig.certificate_serial == fresh.serial


# --- queries -------------------------------------------------------------------------------------


def test_visibility_query(make_agreement, make_party, make_org, make_user):
    committee = make_org("电力公司党委", kind="committee")
    inside = make_party("营销服务党支部", parent=committee)
    outside, third = make_party("外单位党支部"), make_party("第三方党支部")
    mine = make_agreement(parties=[inside.org, outside.org])
    theirs = make_agreement(parties=[outside.org, third.org])
    reviewer = make_user("committee", org=committee)
    admin = make_user("admin")
    lonely = make_user("liaison")

    def visible(user):
        return set(db.session.execute(agreements_visible_to(user)).scalars())

    assert visible(inside.liaison) == {mine}
    assert visible(outside.secretary) == {mine, theirs}
    assert visible(reviewer) == {mine}
    assert visible(admin) == {mine, theirs}
    assert visible(lonely) == set()


def test_active_and_expiring_queries(make_agreement, make_party):
    a, b = make_party(), make_party()
    soon = make_agreement(parties=[a.org, b.org], status="active", ends_on=date(2026, 7, 10))
    later = make_agreement(parties=[a.org, b.org], status="active", ends_on=date(2026, 12, 31))
    make_agreement(parties=[a.org, b.org], status="expired", ends_on=date(2026, 7, 5))
    make_agreement(parties=[b.org, make_party().org], status="active", ends_on=date(2026, 7, 1))
    assert active_agreements_for_org(a.org.id) == [soon, later]
    assert expiring_between(date(2026, 7, 1), date(2026, 7, 31))[1:] == [soon]
    assert len(expiring_between(date(2026, 7, 1), date(2026, 7, 31))) == 2
    assert expiring_between(date(2026, 8, 1), date(2026, 8, 31)) == []


def test_cli_expire_and_pki_init(app, make_agreement, make_party):
    a, b = make_party(), make_party()
    due = make_agreement(parties=[a.org, b.org], status="active", title="到期协议", ends_on=date(2026, 6, 30))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["agreements", "expire", "--today", "2026-07-01"])
    assert result.exit_code == 0, result.output
    assert "到期协议" in result.output and "共 1 份" in result.output
    assert db.session.get(Agreement, due.id).status is AgreementStatus.expired
    assert runner.invoke(args=["agreements", "expire", "--today", "July"]).exit_code != 0
    result = runner.invoke(args=["agreements", "pki-init"])
    assert result.exit_code == 0 and "根证书 SHA-256 指纹" in result.output


def test_a_tampered_archive_file_stops_signing(pair, agreement_content):
    from agreements.signatures import ArchiveError

    a, b = pair
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    version = ops.submit_for_signing(agreement, actor=a.secretary)
    db.session.commit()
    path = archive_path(version.pdf_path)
    path.write_bytes(path.read_bytes() + b"%")
    with pytest.raises(ArchiveError, match="哈希值不符"):
        ops.sign_agreement(agreement, actor=a.secretary, password=DEFAULT_PASSWORD, ip=None)
