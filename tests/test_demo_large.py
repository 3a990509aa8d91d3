"""The group-scale generator (`flask seed-demo --scale large`) at a tiny scale: shape and invariants."""
from datetime import date

import sqlalchemy as sa

from agreements.models import Agreement, AgreementLiaison, AgreementParty
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    Attachment,
)
from coop.auth.models import Role, User, UserRole
from coop.demo_large import GENERATED_TEMPLATE, LargeSpec, seed_large
from coop.extensions import db
from coop.orgs.models import Organization
from coop.review.models import ActivityEvaluation

TODAY = date(2026, 11, 20)


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_tiny_large_scale_invariants(app, tmp_path):
    spec = LargeSpec.scaled(0.05)  # 15 organizations, 30 agreements, 3,000 activities
    lines = []
    result = seed_large(lines.append, spec=spec, today=TODAY, upload_dir=tmp_path / "uploads")
    assert not result.skipped and any("完成" in line for line in lines)

    # Counts: the generator's own root (no normal demo here) plus the spec's organizations and users.
    assert _count(Organization) == spec.organizations + 1
    assert _count(User) == (spec.organizations + 1) * spec.users_per_org
    assert _count(Agreement) == spec.agreements
    assert _count(Activity) == spec.activities
    assert _count(Attachment) > 0 and _count(ActivityEvaluation) > 0

    # The tree: every path is the parent's path plus the own id; the group root has companies below it.
    orgs = {o.id: o for o in db.session.scalars(sa.select(Organization))}
    for org in orgs.values():
        expected = (orgs[org.parent_id].path if org.parent_id else "/") + f"{org.id}/"
        assert org.path == expected
    root = orgs[result.root_id]
    assert sum(1 for o in orgs.values() if o.is_within(root)) > spec.organizations // 2

    agreements = {a.id: a for a in db.session.scalars(sa.select(Agreement))}
    statuses = {a.status.value for a in agreements.values()}
    assert {"active", "expired"} <= statuses
    assert any(a.renewed_from_id for a in agreements.values())
    for a in agreements.values():
        assert a.template_code == GENERATED_TEMPLATE and "生成数据" in a.purpose
        assert len(a.parties) >= 2 and a.starts_on <= a.ends_on
        if a.renewed_from_id:  # a renewal follows its predecessor, between the same parties
            prev = agreements[a.renewed_from_id]
            assert sorted(prev.party_org_ids) == sorted(a.party_org_ids)
            assert a.starts_on > prev.ends_on or prev.status.value == "terminated"
    # Named liaisons are users of the party they act for, holding the liaison role.
    for org_id, user_org, role in db.session.execute(
        sa.select(AgreementLiaison.organization_id, User.organization_id, UserRole.role)
        .join(User, User.id == AgreementLiaison.user_id).join(UserRole, UserRole.user_id == User.id)
    ):
        assert org_id == user_org and role is Role.liaison

    parties: dict[int, set[int]] = {}
    for ag_id, org_id in db.session.execute(sa.select(AgreementParty.agreement_id, AgreementParty.organization_id)):
        parties.setdefault(ag_id, set()).add(org_id)
    links = dict(db.session.execute(sa.select(ActivityAgreement.activity_id, ActivityAgreement.agreement_id)).all())
    joined: dict[int, set[int]] = {}
    for act_id, org_id in db.session.execute(sa.select(ActivityOrganization.activity_id, ActivityOrganization.organization_id)):
        joined.setdefault(act_id, set()).add(org_id)
    confs: dict[int, dict[int, str]] = {}
    for act_id, org_id, state in db.session.execute(
        sa.select(ActivityConfirmation.activity_id, ActivityConfirmation.organization_id, ActivityConfirmation.state)
    ):
        confs.setdefault(act_id, {})[org_id] = state.value
    seen_states = set()
    for act in db.session.execute(sa.select(Activity.id, Activity.organizer_org_id, Activity.held_on, Activity.status,
                                            Activity.confirmation, Activity.held_confirmed_at)):
        agreement = agreements[links[act.id]]
        # The organizer is a party of the activity's agreement and the date lies within its term.
        assert act.organizer_org_id in parties[agreement.id]
        assert agreement.starts_on <= act.held_on <= agreement.ends_on
        if act.status.value == "held":
            assert act.held_on < TODAY
        # Participants are parties; every partner (not the organizer) has exactly one confirmation row.
        assert act.organizer_org_id in joined[act.id] and joined[act.id] <= parties[agreement.id]
        mine = confs.get(act.id, {})
        assert set(mine) == joined[act.id] - {act.organizer_org_id} and mine
        states = set(mine.values())
        expected = "disputed" if "disputed" in states else "confirmed" if states == {"confirmed"} else "pending"
        assert act.confirmation.value == expected
        assert (act.held_confirmed_at is not None) == (expected == "confirmed")
        seen_states |= states
    assert seen_states == {"pending", "confirmed", "disputed"}

    # Evaluations come from committee reviewers overseeing a party of the activity's agreement.
    reviewers = {u.id: u for u in db.session.scalars(sa.select(User).where(
        User.id.in_(sa.select(ActivityEvaluation.reviewer_id))))}
    for ev in db.session.scalars(sa.select(ActivityEvaluation)):
        reviewer = reviewers[ev.reviewer_id]
        assert reviewer.has_role(Role.committee)
        agreement = agreements[links[ev.activity_id]]
        assert any(orgs[o].is_within(reviewer.organization) for o in parties[agreement.id])
    # A few real thumbnails exist for the attachment rows to point at.
    assert list((tmp_path / "uploads" / "generated").glob("thumb_*.jpg"))

    # Idempotent-ish: a second run finds the data and adds nothing.
    again = seed_large(lines.append, spec=spec, today=TODAY, upload_dir=tmp_path / "uploads")
    assert again.skipped and _count(Activity) == spec.activities
