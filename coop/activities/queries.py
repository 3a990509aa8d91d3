"""Reading the ledger: which activities a person may see, what waits for confirmation, filtered lists.

Every function returns a SQLAlchemy `Select` so callers can paginate, count or add filters; run it
with `db.session.scalars(stmt).all()`. `LEDGER_LOADS` preloads what a ledger row shows, so a page of
activities costs a fixed number of queries, not one per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, load_only, selectinload

from agreements.models import Agreement, AgreementLiaison, AgreementParty
from coop import cache
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityRevision,
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
    joinedload(Activity.confirmations),
    selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.parties),
)

# One activity's page (activities.detail, issue 10): four statements instead of a lazy load per relationship
# (fourteen). DETAIL_CHECK_LOADS, with the activity's row: what the permission checks read — the agreements, their
# parties with organizations and their liaisons (parties × liaisons rows) — and the organizer and recorder.
# DETAIL_LOADS, once the check passed (load_into): the activity's own small collections joined to its row
# (confirmations × participants × tags rows), attachments and revisions in one statement each (they can be many).
# Recorders' and deciders' roles stay lazy (never read on the page; role_rows is selectin by default). Plain LEFT
# OUTER JOINs on purpose: an inner join nested inside an outer one ("LEFT JOIN (a JOIN b)") makes SQLite
# materialise that join over whole tables (hundreds of milliseconds at 60,000 activities); a flat chain is
# searched by index row by row.
DETAIL_CHECK_LOADS = (
    joinedload(Activity.agreement_links).joinedload(ActivityAgreement.agreement).options(
        joinedload(Agreement.parties).joinedload(AgreementParty.organization),
        joinedload(Agreement.liaisons),
    ),
    joinedload(Activity.organizer_org),
    joinedload(Activity.created_by).lazyload(User.role_rows),
    joinedload(Activity.withdrawn_by).lazyload(User.role_rows),
)
DETAIL_LOADS = (
    joinedload(Activity.confirmations).options(
        joinedload(ActivityConfirmation.organization),
        joinedload(ActivityConfirmation.decided_by).lazyload(User.role_rows),
    ),
    joinedload(Activity.participants).joinedload(ActivityOrganization.organization),
    joinedload(Activity.tags),
    selectinload(Activity.attachments),
    selectinload(Activity.revisions).joinedload(ActivityRevision.changed_by).lazyload(User.role_rows),
)


SCOPES = ("mine", "committee")


def activities_by_ids(ids: list[int], *options) -> list[Activity]:
    """The activities with these ids, in the order of `ids` (ids found earlier, e.g. memoised by a home panel)."""
    if not ids:
        return []
    found = {a.id: a for a in db.session.scalars(sa.select(Activity).where(Activity.id.in_(ids)).options(*options))
             .unique()}
    return [found[i] for i in ids if i in found]


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


def _participates(org_id: int, *, walk: bool = False):
    """The organization took part. Two forms of the same condition (issue 10), chosen by ledger_page:

    * `id IN (the organization's activities)` drives the query from the organization's list: SQLite reads each
      of them and sorts them all to show a page — cheap for most organizations, a few ms for one with
      thousands of activities;
    * walk=True: a correlated EXISTS, so SQLite walks all activities in ledger order (the held_on index) and
      probes activity_organizations (its (activity_id, organization_id) unique index) until the page is full —
      well under 1 ms when the organization's activities are a fair share of everything, far slower when they
      are few (the walk passes everybody else's).

    PostgreSQL plans both as the same semi-join.
    """
    if walk:
        return sa.exists().where(ActivityOrganization.activity_id == Activity.id,
                                 ActivityOrganization.organization_id == org_id)
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
    *,
    loads=LEDGER_LOADS,
    walk: bool = False,
) -> sa.Select:
    """The ledger the user asked for, newest first, limited to what the user may see.

    `scope='mine'` keeps activities the user's own organization took part in (unless an agreement or an
    organization is given); `scope='committee'` keeps everything the user may see. `loads`: the loader options
    (what the caller shows of each row); `walk`: the form of the participation conditions (see _participates).
    """
    stmt = activities_visible_to(user)
    if agreement_id is not None:
        stmt = stmt.where(_in_agreements([agreement_id]))
    if org_id is not None:
        stmt = stmt.where(_participates(org_id, walk=walk))
    elif agreement_id is None and scope == "mine":
        if user.organization_id is None:
            return stmt.where(sa.false())
        stmt = stmt.where(_participates(user.organization_id, walk=walk))
    if partner_org_id is not None:
        stmt = stmt.where(_participates(partner_org_id, walk=walk))
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
    return stmt.order_by(Activity.held_on.desc(), Activity.start_time.desc(), Activity.id.desc()).options(*loads)


# What a list item (activity_item in templates/activities/_macros.html: ledger pages, home panels) reads, and nothing more
# (issue 10: twenty activities joined with their participants and confirmations make a hundred rows, whose
# unused columns cost more to load than the page's SQL): the activity's shown columns, each participating
# organization's names, and whether confirmations were asked. A column not listed here still loads when read,
# one statement per row — list it here when the list item starts showing it.
ITEM_LOADS = (
    load_only(Activity.category, Activity.title, Activity.held_on, Activity.start_time, Activity.end_time,
              Activity.place, Activity.party_member_count, Activity.other_count, Activity.status,
              Activity.confirmation, Activity.withdrawn_reason),
    joinedload(Activity.participants).load_only(ActivityOrganization.organization_id)
    .joinedload(ActivityOrganization.organization).load_only(Organization.name, Organization.short_name),
    joinedload(Activity.confirmations).load_only(ActivityConfirmation.id),
)


def _all_activities() -> int:
    """How many activities there are (memoised per data generation): what a walk in ledger order passes."""
    stmt = sa.select(sa.func.count()).select_from(Activity)
    return cache.memoized("activities.total", (), lambda: int(db.session.execute(stmt).scalar_one()))


def ledger_page(user: User, *, page: int, per_page: int, loads=LEDGER_LOADS, **criteria):
    """One page of ledger_query(user, **criteria) (a Flask-SQLAlchemy pagination, an out-of-range page empty),
    its total memoised per data generation (coop.cache.count_rows).

    Issue 10: when the ledger is limited to organizations that took part (a liaison's own ledger, an
    organization's, a partner filter), the total decides how to find the page. Walking every activity in ledger
    order passes about (offset + per_page) · all / total of them; collecting the organization's own activities
    reads at least `total` rows, each several times dearer (a row read and sorted, against an index probe). So
    the walk is taken while it should pass fewer than 2 · total activities: for the first pages of an
    organization with a large share of the activities (the busiest party's ledger: 0.4 ms instead of 6 ms on
    SQLite with 60,000 activities), never for a small one (its first page would walk everything). The estimate
    assumes the organization's activities are spread over time like everybody's; when they all lie far back,
    the walk goes further (at worst through every activity, about 25 ms at that scale). Both forms list the same
    rows in the same order.
    """
    stmt = ledger_query(user, loads=loads, **criteria)
    total = cache.count_rows(stmt)
    offset = (page - 1) * per_page
    participation = (criteria.get("org_id") is not None or criteria.get("partner_org_id") is not None
                     or (criteria.get("agreement_id") is None and criteria.get("scope", "mine") == "mine"))
    if participation and total and (offset + per_page) * _all_activities() < 2 * total * total:
        stmt = ledger_query(user, loads=loads, walk=True, **criteria)
    pagination = db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=False)
    pagination.total = total
    return pagination


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
