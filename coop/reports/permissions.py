"""Who may see, download and generate which monthly report — built on the organization scope predicates.

* Agreement reports: members of a party organization (liaisons, secretaries), reviewers above any party, admins.
* Organization reports: the organization's members, reviewers above it, admins.
* Committee reports: reviewers whose subtree contains the scope's organization, admins; the platform-wide
  report (no organization): admins only.
Seeing a report's subject means being allowed to generate it too: a new version changes nothing archived.
"""
from __future__ import annotations

import sqlalchemy as sa

from agreements.models import Agreement, AgreementParty
from agreements.permissions import can_view_agreement
from coop.auth.models import User
from coop.auth.permissions import belongs_to, committee_scope_root, oversees, subtree_filter
from coop.orgs.models import Organization
from coop.reports.models import MonthlyReport, ReportKind


def can_see_reports(user: User) -> bool:
    """Whether the 月度报告 pages are of any use to the user (a member of some organization, or an admin)."""
    return user.is_authenticated and (user.is_admin or user.organization_id is not None)


def can_view_subject(user: User, kind: ReportKind, subject: Agreement | Organization | None) -> bool:
    """May `user` see (and generate) reports about this agreement / organization / committee scope?"""
    if not user.is_authenticated:
        return False
    if user.is_admin:
        return True
    if kind is ReportKind.agreement:
        return subject is not None and can_view_agreement(user, subject)
    if kind is ReportKind.organization:
        return subject is not None and (belongs_to(user, subject.id) or oversees(user, subject))
    return subject is not None and oversees(user, subject)


def can_view_report(user: User, report: MonthlyReport) -> bool:
    """May `user` open or download this archived report?"""
    subject = report.agreement if report.kind is ReportKind.agreement else report.organization
    return can_view_subject(user, report.kind, subject)


def can_run_month_batch(user: User) -> bool:
    """Only admins start a whole month's batch (it covers every organization)."""
    return user.is_authenticated and user.is_admin


def visible_reports_filter(user: User):
    """A SQL condition on MonthlyReport matching exactly the rows `can_view_report` allows."""
    if user.is_admin:
        return sa.true()
    conditions = []
    root = committee_scope_root(user)
    # A reviewer whose subtree starts at their own organization already sees its reports through the subtree
    # conditions below (the subtree includes its root): the member's conditions would add no row, only
    # statement building and subqueries on every visit of the archive (issue 10).
    if user.organization_id is not None and (root is None or root.id != user.organization_id):
        mine = sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id == user.organization_id)
        conditions += [
            sa.and_(MonthlyReport.kind == ReportKind.agreement, MonthlyReport.agreement_id.in_(mine)),
            sa.and_(MonthlyReport.kind == ReportKind.organization, MonthlyReport.organization_id == user.organization_id),
        ]
    if root is not None:
        below = sa.select(Organization.id).where(subtree_filter(root))
        overseen = sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id.in_(below))
        conditions += [
            sa.and_(MonthlyReport.kind == ReportKind.agreement, MonthlyReport.agreement_id.in_(overseen)),
            sa.and_(MonthlyReport.kind.in_([ReportKind.organization, ReportKind.committee]),
                    MonthlyReport.organization_id.in_(below)),
        ]
    return sa.or_(*conditions) if conditions else sa.false()
