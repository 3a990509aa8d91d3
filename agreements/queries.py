"""Read-only questions about agreements that other domains ask (reminders, reports, review, home).

These names are a contract: agreements_visible_to, active_agreements_for_org, awaiting_signature,
expiring_between.
"""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from agreements.models import (
    Agreement,
    AgreementParty,
    AgreementStatus,
    AgreementVersion,
    VersionState,
)
from coop.auth.models import User
from coop.auth.permissions import committee_scope_root
from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.orgs.models import Organization


def agreements_visible_to(user: User) -> sa.Select:
    """A select of the Agreements `user` may see (parties' members, reviewers over a party, admins)."""
    stmt = sa.select(Agreement)
    if not user.is_authenticated:
        return stmt.where(sa.false())
    if user.is_admin:
        return stmt
    conditions = []
    if user.organization_id is not None:
        conditions.append(
            sa.exists().where(AgreementParty.agreement_id == Agreement.id,
                              AgreementParty.organization_id == user.organization_id)
        )
    root = committee_scope_root(user)
    if root is not None:
        conditions.append(
            sa.exists().where(
                AgreementParty.agreement_id == Agreement.id,
                AgreementParty.organization_id == Organization.id,
                Organization.path.startswith(root.path, autoescape=True),
            )
        )
    if not conditions:
        return stmt.where(sa.false())
    return stmt.where(sa.or_(*conditions))


def active_agreements_for_org(org_id: int) -> list[Agreement]:
    """Active agreements the organization is a party to, soonest to end first."""
    return list(db.session.execute(
        sa.select(Agreement)
        .join(AgreementParty, AgreementParty.agreement_id == Agreement.id)
        .where(AgreementParty.organization_id == org_id, Agreement.status == AgreementStatus.active)
        .order_by(Agreement.ends_on, Agreement.id)
        .options(selectinload(Agreement.parties))
    ).scalars())


def awaiting_signature(org_id: int | None = None) -> list[tuple[Agreement, int, datetime]]:
    """Who still has to sign: (agreement, party organization id, waiting since) for every version being signed.

    With a fixed signing order only the party whose turn it is appears, waiting since the previous
    signature; otherwise every unsigned party appears, waiting since the text was sent for signing.
    Restricted to one party organization when `org_id` is given. Oldest first.
    """
    versions = db.session.execute(
        sa.select(AgreementVersion)
        .where(AgreementVersion.state == VersionState.signing)
        .options(selectinload(AgreementVersion.signatures), selectinload(AgreementVersion.agreement))
        .order_by(AgreementVersion.submitted_at, AgreementVersion.id)
    ).scalars().all()
    rows: list[tuple[Agreement, int, datetime]] = []
    for v in versions:
        latest = max((s.signed_at for s in v.signatures), default=None)
        fixed = bool(v.content.get("signing_order_fixed"))
        for party in v.next_signer_org_ids():
            if org_id is not None and party != org_id:
                continue
            since = (latest or v.submitted_at) if fixed else v.submitted_at
            rows.append((v.agreement, party, since or v.created_at))
    rows.sort(key=lambda r: r[2])
    return rows


def expiring_between(start_date: date, end_date: date) -> list[Agreement]:
    """Active agreements whose term ends between the two dates (inclusive), soonest first."""
    return list(db.session.execute(
        sa.select(Agreement)
        .where(Agreement.status == AgreementStatus.active, Agreement.ends_on >= start_date,
               Agreement.ends_on <= end_date)
        .order_by(Agreement.ends_on, Agreement.id)
        .options(selectinload(Agreement.parties))
    ).scalars())


def agreement_for_detail(agreement_id: int) -> Agreement | None:
    """The agreement with everything its detail page shows, in five statements whatever its size (issue 10).

    Parties with their organizations and the creating/ending users come joined with the agreement (one row
    per party, no second joined collection). Commitments, liaisons (with their users) and versions (with
    their signatures) are each one plain query put into the collections with set_committed_value: the same
    statements selectinload would send, without its per-load bookkeeping (≈0.4 ms less per page view).
    """
    from sqlalchemy.orm import joinedload, lazyload
    from sqlalchemy.orm.attributes import set_committed_value

    from agreements.models import AgreementCommitment, AgreementLiaison

    agreement = db.session.execute(
        sa.select(Agreement).where(Agreement.id == agreement_id).options(
            joinedload(Agreement.parties).joinedload(AgreementParty.organization),
            # the page never reads these users' roles (User.role_rows is selectin)
            joinedload(Agreement.created_by).lazyload(User.role_rows),
            joinedload(Agreement.ended_by).lazyload(User.role_rows),
            lazyload(Agreement.commitments), lazyload(Agreement.liaisons), lazyload(Agreement.versions),
        )
    ).unique().scalar_one_or_none()
    if agreement is None:
        return None
    set_committed_value(agreement, "commitments", list(db.session.execute(
        sa.select(AgreementCommitment).where(AgreementCommitment.agreement_id == agreement_id)
        .order_by(AgreementCommitment.id)
    ).scalars()))
    set_committed_value(agreement, "liaisons", list(db.session.execute(
        sa.select(AgreementLiaison).where(AgreementLiaison.agreement_id == agreement_id)
        .order_by(AgreementLiaison.id)
        .options(joinedload(AgreementLiaison.user).lazyload(User.role_rows))
    ).scalars()))
    set_committed_value(agreement, "versions", list(db.session.execute(
        sa.select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
        .order_by(AgreementVersion.number).options(selectinload(AgreementVersion.signatures))
    ).scalars()))
    return agreement


def agreement_history(agreement: Agreement) -> list[AuditEntry]:
    """The audit log entries about an agreement, oldest first (the detail page's history)."""
    return list(db.session.execute(
        sa.select(AuditEntry)
        .where(AuditEntry.target_type == "Agreement", AuditEntry.target_id == agreement.id)
        .order_by(AuditEntry.id)
    ).scalars())


def version_by_code(code: str) -> AgreementVersion | None:
    """The version printed with this public verification code."""
    return db.session.execute(
        sa.select(AgreementVersion).where(AgreementVersion.verify_code == code)
    ).scalar_one_or_none()


def version_by_file_hash(sha256: str) -> tuple[AgreementVersion | None, str | None]:
    """Which archived file has this SHA-256: (version, 'final' | 'certificate' | 'intermediate') or (None, None)."""
    from agreements.models import AgreementSignature

    v = db.session.execute(
        sa.select(AgreementVersion).where(AgreementVersion.final_sha256 == sha256).limit(1)
    ).scalar_one_or_none()
    if v is not None:
        return v, "final"
    v = db.session.execute(
        sa.select(AgreementVersion).where(AgreementVersion.certificate_sha256 == sha256).limit(1)
    ).scalar_one_or_none()
    if v is not None:
        return v, "certificate"
    sig = db.session.execute(
        sa.select(AgreementSignature).where(AgreementSignature.sha256_after == sha256).limit(1)
    ).scalar_one_or_none()
    if sig is not None:
        return sig.version, "intermediate"
    return None, None
