"""The 工作台账 export at group scale (issue 10): the same rows as coop.activities.ledger_io.ledger_row,
streamed from plain column queries instead of ORM objects.

A group reviewer's ledger has 60,000 activities. Loading them as ORM objects with their participants,
confirmations, links, agreements and recorders creates some 500,000 instances (most of the export's time)
and, without streaming, keeps them all in memory (650 MB). Here the activities are read in batches of
BATCH (one server-side / incremental cursor), and each batch costs three grouped queries (participants,
confirmations, links) plus look-ups of the organizations, users and agreements not seen before. Memory is
one batch plus those look-up tables (bounded by the number of organizations, users and agreements).

tests/test_activities_ledger_export.py checks that the rows equal ledger_row's for the same activities.
"""
from __future__ import annotations

from typing import Any, IO, Iterable, Iterator

import sqlalchemy as sa

from agreements.models import Agreement, AgreementParty
from coop.activities.ledger_io import COLUMN_WIDTHS, LEDGER_HEADERS
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    ActivityStatus,
    ConfirmationState,
)
from coop.auth.models import User
from coop.categories import CATEGORY_BY_CODE
from coop.extensions import db
from coop.formatting import cn_date
from coop.orgs.models import Organization
from coop.spreadsheets import write_csv, write_xlsx

BATCH = 1000

_COLUMNS = (
    Activity.id, Activity.held_on, Activity.category, Activity.title, Activity.place, Activity.party_member_count,
    Activity.other_count, Activity.summary, Activity.outcome, Activity.status, Activity.withdrawn_reason,
    Activity.confirmation, Activity.organizer_org_id, Activity.created_by_id,
)


def ledger_columns(stmt: sa.Select) -> sa.Select:
    """The export's columns for the activities `stmt` selects (its filters), in ledger order (oldest first)."""
    plain = sa.select(*_COLUMNS)
    if stmt.whereclause is not None:
        plain = plain.where(stmt.whereclause)
    return plain.order_by(Activity.held_on, Activity.start_time, Activity.id)


class _Lookups:
    """Names of organizations and users, agreements' titles and party order: fetched once, when first needed."""

    def __init__(self):
        self.orgs: dict[int, str] = {}
        self.users: dict[int, str] = {}
        self.agreements: dict[int, tuple[str, list[int]]] = {}

    def need(self, org_ids: set[int], user_ids: set[int], agreement_ids: set[int]) -> None:
        missing = sorted(agreement_ids - self.agreements.keys())
        if missing:
            parties: dict[int, list[int]] = {a: [] for a in missing}
            for aid, org_id in db.session.execute(
                sa.select(AgreementParty.agreement_id, AgreementParty.organization_id)
                .where(AgreementParty.agreement_id.in_(missing))
                .order_by(AgreementParty.agreement_id, AgreementParty.position, AgreementParty.id)
            ):
                parties[aid].append(org_id)
            for aid, title in db.session.execute(sa.select(Agreement.id, Agreement.title).where(Agreement.id.in_(missing))):
                self.agreements[aid] = (title, parties[aid])
            for ps in parties.values():
                org_ids |= set(ps)
        missing = sorted(org_ids - self.orgs.keys())
        if missing:
            self.orgs.update(db.session.execute(
                sa.select(Organization.id, Organization.name).where(Organization.id.in_(missing))).all())
        missing = sorted(user_ids - self.users.keys())
        if missing:
            self.users.update(db.session.execute(
                sa.select(User.id, User.display_name).where(User.id.in_(missing))).all())


def _by_activity(stmt) -> dict[int, list[tuple]]:
    out: dict[int, list[tuple]] = {}
    for row in db.session.execute(stmt):
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def stream_ledger_rows(stmt: sa.Select) -> Iterator[list[Any]]:
    """ledger_row(n, activity) for every activity of `stmt`, numbered from 1, oldest first (see module doc)."""
    look = _Lookups()
    number = 0
    result = db.session.execute(ledger_columns(stmt).execution_options(yield_per=BATCH))
    for batch in result.partitions():
        ids = [r.id for r in batch]
        joined = _by_activity(
            sa.select(ActivityOrganization.activity_id, ActivityOrganization.organization_id)
            .where(ActivityOrganization.activity_id.in_(ids)).order_by(ActivityOrganization.id))
        confs = _by_activity(
            sa.select(ActivityConfirmation.activity_id, ActivityConfirmation.organization_id, ActivityConfirmation.state)
            .where(ActivityConfirmation.activity_id.in_(ids)).order_by(ActivityConfirmation.id))
        links = _by_activity(
            sa.select(ActivityAgreement.activity_id, ActivityAgreement.agreement_id)
            .where(ActivityAgreement.activity_id.in_(ids)).order_by(ActivityAgreement.id))
        org_ids = {r.organizer_org_id for r in batch}
        for rows in (joined, confs):
            org_ids |= {row[0] for rs in rows.values() for row in rs}
        look.need(org_ids, {r.created_by_id for r in batch}, {row[0] for rs in links.values() for row in rs})
        for r in batch:
            number += 1
            yield _row(number, r, joined.get(r.id, []), confs.get(r.id, []), links.get(r.id, []), look)


def _row(number: int, r, joined: list[tuple], confs: list[tuple], links: list[tuple], look: _Lookups) -> list[Any]:
    # Participants in the order the parties appear in the activity's agreements, then by name (as ledger_io).
    position: dict[int, int] = {}
    for (agreement_id,) in links:
        for org_id in look.agreements[agreement_id][1]:
            position.setdefault(org_id, len(position))
    participants = sorted((org_id for (org_id,) in joined),
                          key=lambda o: (position.get(o, len(position)), look.orgs.get(o, "")))
    status = ActivityStatus(r.status) if not isinstance(r.status, ActivityStatus) else r.status
    confirmation = r.confirmation if isinstance(r.confirmation, ConfirmationState) else ConfirmationState(r.confirmation)
    if status is ActivityStatus.withdrawn and r.withdrawn_reason:
        status_text = f"{status.label}（{r.withdrawn_reason}）"
    else:
        status_text = status.label
    if confs:
        parts = [f"{look.orgs.get(org_id, '')}{(s if isinstance(s, ConfirmationState) else ConfirmationState(s)).label}"
                 for org_id, s in confs]
        confirmation_text = f"{confirmation.label}（{'；'.join(parts)}）"
    else:
        confirmation_text = "—"
    recorder = look.users.get(r.created_by_id, "")
    if r.organizer_org_id is not None:
        recorder = f"{recorder}（{look.orgs.get(r.organizer_org_id, '')}）"
    category = CATEGORY_BY_CODE[r.category].name if r.category in CATEGORY_BY_CODE else r.category
    return [
        number, cn_date(r.held_on), category, r.title, r.place or "",
        "、".join(look.orgs.get(o, "") for o in participants), r.party_member_count, r.other_count,
        r.summary or "", r.outcome or "", status_text, confirmation_text, recorder,
        "；".join(look.agreements[a][0] for (a,) in links),
    ]


def export_xlsx_streamed(stmt: sa.Select, stream: IO[bytes], sheet_title: str = "工作台账") -> int:
    """ledger_io.export_xlsx for every activity of `stmt`, streamed; returns the number of activities."""
    return write_xlsx(stream, sheet_title, LEDGER_HEADERS, stream_ledger_rows(stmt), COLUMN_WIDTHS)


def export_csv_streamed(stmt: sa.Select, stream: IO[bytes]) -> int:
    """ledger_io.export_csv for every activity of `stmt`, streamed; returns the number of activities."""
    return write_csv(stream, LEDGER_HEADERS, stream_ledger_rows(stmt))


def rows_equal_orm(activities: Iterable[Activity], rows: Iterable[list[Any]]) -> bool:
    """True when `rows` equal ledger_io.ledger_row for `activities` (a self-check for tests and benches)."""
    from coop.activities.ledger_io import ledger_rows

    return list(ledger_rows(activities)) == list(rows)
