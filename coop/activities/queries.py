"""Reading the ledger: which activities a person may see, what waits for confirmation, filtered lists.

Every function returns a SQLAlchemy `Select` so callers can paginate, count or add filters; run it
with `db.session.scalars(stmt).all()`. `LEDGER_LOADS` preloads what a ledger row shows, so a page of
activities costs a fixed number of queries, not one per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from agreements.models import Agreement, AgreementLiaison, AgreementParty
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    ActivityStatus,
    ConfirmationState,
)
from coop.activities.permissions import liaison_org_ids
from coop.auth.models import Role, User
from coop.auth.permissions import committee_scope_root, subtree_filter
from coop.extensions import db
from coop.orgs.models import Organization

# What a ledger row, the calendar and the export show: participants, agreements, confirmations,
# organizer and recorder. selectinload keeps it to one extra query per relationship per page.
LEDGER_LOADS = (
    selectinload(Activity.participants).selectinload(ActivityOrganization.organization),
    selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.parties),
    selectinload(Activity.confirmations).selectinload(ActivityConfirmation.organization),
    selectinload(Activity.tags),
    selectinload(Activity.organizer_org),
    selectinload(Activity.created_by),
)

# Permission checks on each listed activity (can_confirm_activity, can_edit_activity) read the agreements'
# liaisons; loading them with the page keeps the confirmation inbox at a fixed number of queries.
PERMISSION_LOADS = (
    selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.liaisons),
)

# What can_confirm_activity reads besides PERMISSION_LOADS: the requests and the agreements' parties.
CONFIRM_CHECK_LOADS = (
    selectinload(Activity.confirmations),
    selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.parties),
)

SCOPES = ("mine", "committee")


def visible_agreement_ids(user: User):
    """A select of agreement ids the user may see (None for admins, who see every agreement)."""
    if user.is_admin:
        return None
    conditions = []
    if user.organization_id is not None:
        conditions.append(AgreementParty.organization_id == user.organization_id)
    root = committee_scope_root(user)
    if root is not None:
        conditions.append(AgreementParty.organization_id.in_(sa.select(Organization.id).where(subtree_filter(root))))
    named = sa.select(AgreementLiaison.agreement_id).where(AgreementLiaison.user_id == user.id)
    if not conditions:
        return named
    return sa.union(sa.select(AgreementParty.agreement_id).where(sa.or_(*conditions)), named)


def _in_agreements(agreement_ids):
    return Activity.id.in_(
        sa.select(ActivityAgreement.activity_id).where(ActivityAgreement.agreement_id.in_(agreement_ids))
    )


def _linked_to_any(agreement_ids):
    """EXISTS (a link of this activity to one of the agreements).

    Issue 10: the visibility filter is written as a correlated EXISTS rather than `id IN (…)`. With IN, SQLite
    first collects every visible activity (60,000 for a group reviewer), reads each row and sorts them all to
    show 20 (50 ms); with EXISTS it walks the activities in ledger order (the held_on index) and probes the
    link table for each until the page is full (under 1 ms). `agreement_id + 0` makes that probe look the
    activity up by activity_id (one index lookup) instead of trying every visible agreement id against the
    (agreement_id, activity_id) index, which made the page's COUNT take seconds. Selective filters (an
    agreement, an organization) still drive the query through their own IN. PostgreSQL plans both forms as
    the same semi-join.
    """
    return sa.exists().where(ActivityAgreement.activity_id == Activity.id,
                             (ActivityAgreement.agreement_id + 0).in_(agreement_ids))


def activities_visible_to(user: User) -> sa.Select:
    """Activities of every agreement the user may see (party members, reviewers over a party, admins)."""
    stmt = sa.select(Activity)
    if not user.is_authenticated:
        return stmt.where(sa.false())
    ids = visible_agreement_ids(user)
    return stmt if ids is None else stmt.where(_linked_to_any(ids))


def awaiting_confirmation(org_id: int, *, rows: bool = True) -> sa.Select:
    """Held activities logged by a partner that still wait for `org_id`'s confirmation, oldest first.

    rows=False loads only what the permission check (can_confirm_activity) reads, for callers that show a
    few of them and count the rest (the home panel; issue 10: a busy party has a hundred waiting).
    """
    return (
        sa.select(Activity)
        .join(ActivityConfirmation, ActivityConfirmation.activity_id == Activity.id)
        .where(
            ActivityConfirmation.organization_id == org_id,
            ActivityConfirmation.state == ConfirmationState.pending,
            Activity.status == ActivityStatus.held,
        )
        .order_by(Activity.held_on, Activity.id)
        .options(*(LEDGER_LOADS if rows else CONFIRM_CHECK_LOADS), *PERMISSION_LOADS)
    )


def _participates(org_id: int):
    return Activity.id.in_(
        sa.select(ActivityOrganization.activity_id).where(ActivityOrganization.organization_id == org_id)
    )


def search_condition(q: str):
    """Every whitespace-separated term must appear in the title, summary, outcome or place."""
    terms = [t for t in q.split() if t][:5]
    return sa.and_(*(
        sa.or_(
            Activity.title.icontains(t, autoescape=True),
            Activity.summary.icontains(t, autoescape=True),
            Activity.outcome.icontains(t, autoescape=True),
            Activity.place.icontains(t, autoescape=True),
        )
        for t in terms
    ))


def ledger_query(
    user: User,
    agreement_id: int | None = None,
    org_id: int | None = None,
    scope: str = "mine",
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    status: ActivityStatus | str | None = None,
    confirmation: ConfirmationState | str | None = None,
    partner_org_id: int | None = None,
    q: str | None = None,
) -> sa.Select:
    """The ledger the user asked for, newest first, limited to what the user may see.

    `scope='mine'` keeps activities the user's own organization took part in (unless an agreement or an
    organization is given); `scope='committee'` keeps everything the user may see.
    """
    stmt = activities_visible_to(user)
    if agreement_id is not None:
        stmt = stmt.where(_in_agreements([agreement_id]))
    if org_id is not None:
        stmt = stmt.where(_participates(org_id))
    elif agreement_id is None and scope == "mine":
        if user.organization_id is None:
            return stmt.where(sa.false())
        stmt = stmt.where(_participates(user.organization_id))
    if partner_org_id is not None:
        stmt = stmt.where(_participates(partner_org_id))
    if category:
        stmt = stmt.where(Activity.category == category)
    if date_from is not None:
        stmt = stmt.where(Activity.held_on >= date_from)
    if date_to is not None:
        stmt = stmt.where(Activity.held_on <= date_to)
    if status:
        stmt = stmt.where(Activity.status == ActivityStatus(status))
    if confirmation:
        stmt = stmt.where(Activity.confirmation == ConfirmationState(confirmation))
    if q and q.strip():
        stmt = stmt.where(search_condition(q))
    return stmt.order_by(Activity.held_on.desc(), Activity.start_time.desc(), Activity.id.desc()).options(*LEDGER_LOADS)


def planned_between(start: date, end: date, org_ids) -> sa.Select:
    """Planned (not yet held, not withdrawn) activities dated start..end in which any of `org_ids` takes part."""
    org_ids = list(org_ids)
    return (
        sa.select(Activity)
        .where(
            Activity.status == ActivityStatus.planned,
            Activity.held_on >= start,
            Activity.held_on <= end,
            Activity.id.in_(
                sa.select(ActivityOrganization.activity_id).where(ActivityOrganization.organization_id.in_(org_ids))
            ),
        )
        .order_by(Activity.held_on, Activity.start_time, Activity.id)
        .options(*LEDGER_LOADS)
    )


def agreements_for_logging(user: User, statuses) -> list[Agreement]:
    """Agreements in `statuses` where the user is a party liaison (named, or liaison of a party org)."""
    if not user.is_authenticated:
        return []
    conditions = [Agreement.id.in_(sa.select(AgreementLiaison.agreement_id).where(AgreementLiaison.user_id == user.id))]
    if user.organization_id is not None and user.has_role(Role.liaison):
        conditions.append(Agreement.id.in_(
            sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id == user.organization_id)
        ))
    rows = db.session.scalars(
        sa.select(Agreement)
        .where(Agreement.status.in_(list(statuses)), sa.or_(*conditions))
        .order_by(Agreement.ends_on.desc(), Agreement.id.desc())
        .options(
            selectinload(Agreement.parties).selectinload(AgreementParty.organization),
            selectinload(Agreement.liaisons),
        )
    ).all()
    return [a for a in rows if liaison_org_ids(user, a)]


@dataclass(frozen=True)
class AgreementChoice:
    """What the ledger's filters need of an agreement: its title and its parties (id, name)."""

    id: int
    title: str
    parties: tuple[tuple[int, str], ...]

    @property
    def party_org_ids(self) -> set[int]:
        return {org_id for org_id, _name in self.parties}


def agreement_choices(user: User) -> list[AgreementChoice]:
    """Every agreement the user may see, for the ledger's agreement and partner filters — plain columns, not
    ORM rows: a group reviewer sees hundreds of agreements with their parties on every ledger page (issue 10)."""
    stmt = sa.select(Agreement.id, Agreement.title).order_by(Agreement.starts_on.desc(), Agreement.id.desc())
    ids = visible_agreement_ids(user)
    if ids is not None:
        stmt = stmt.where(Agreement.id.in_(ids))
    rows = db.session.execute(stmt).all()
    parties: dict[int, list[tuple[int, str]]] = {}
    party_stmt = (
        sa.select(AgreementParty.agreement_id, Organization.id, Organization.name)
        .join(Organization, Organization.id == AgreementParty.organization_id)
        .order_by(AgreementParty.agreement_id, AgreementParty.position)
    )
    if ids is not None:
        party_stmt = party_stmt.where(AgreementParty.agreement_id.in_(ids))
    for agreement_id, org_id, name in db.session.execute(party_stmt):
        parties.setdefault(agreement_id, []).append((org_id, name))
    return [AgreementChoice(aid, title, tuple(parties.get(aid, ()))) for aid, title in rows]
