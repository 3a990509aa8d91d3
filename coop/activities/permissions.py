"""Who may see, log, edit, confirm and withdraw activities — one place for every activity check.

Seeing follows the agreements: whoever may see one of an activity's agreements (members of a party
organization, liaisons named on it, committee reviewers above a party, admins) may see the activity,
its attachments and its history. Acting is for liaisons only: the organizer's liaisons edit and
withdraw; the partners' liaisons confirm or dispute.
"""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa

from agreements.models import Agreement, AgreementLiaison, AgreementStatus
from agreements.permissions import oversees_agreement, party_org_id_of
from coop.activities.models import Activity, ActivityStatus, ImportRun
from coop.auth.models import Role, User
from coop.auth.permissions import committee_scope_root, oversees
from coop.extensions import db
from coop.orgs.models import Organization

# A held activity counts against a running agreement only. Planned activities may also be put on the
# calendar of an agreement still being signed, so partners can agree the first event while signatures
# are collected; they can only be marked held once the agreement is active.
LOGGABLE_STATUSES = {
    ActivityStatus.held: {AgreementStatus.active},
    ActivityStatus.planned: {AgreementStatus.active, AgreementStatus.signing},
}


def liaison_org_ids(user: User, agreement: Agreement) -> set[int]:
    """Party organizations of `agreement` the user acts for as liaison (named on it, or by role)."""
    if not user.is_authenticated:
        return set()
    parties = set(agreement.party_org_ids)
    orgs = {l.organization_id for l in agreement.liaisons if l.user_id == user.id} & parties
    if user.organization_id in parties and user.has_role(Role.liaison):
        orgs.add(user.organization_id)
    return orgs


def user_liaison_org_ids(user: User) -> set[int]:
    """Every organization the user acts for as liaison: their own (liaison role) and any they are named for."""
    if not user.is_authenticated:
        return set()
    orgs = set(db.session.scalars(
        sa.select(AgreementLiaison.organization_id).where(AgreementLiaison.user_id == user.id).distinct()
    ))
    if user.organization_id is not None and user.has_role(Role.liaison):
        orgs.add(user.organization_id)
    return orgs


def organizer_org_for(user: User, agreements: Iterable[Agreement]) -> int | None:
    """The organization the user logs for across all `agreements` (liaison of the same party in each)."""
    common: set[int] | None = None
    for agreement in agreements:
        orgs = liaison_org_ids(user, agreement)
        common = orgs if common is None else common & orgs
    if not common:
        return None
    # Prefer the user's own organization when they are named for several parties.
    return user.organization_id if user.organization_id in common else min(common)


def can_see_agreement_ledger(user: User, agreement: Agreement) -> bool:
    """Party members, liaisons named on the agreement, reviewers above a party and admins."""
    if not user.is_authenticated:
        return False
    return (
        party_org_id_of(user, agreement) is not None
        or user.id in agreement.liaison_user_ids()
        or oversees_agreement(user, agreement)
    )


def can_view_activity(user: User, activity: Activity) -> bool:
    """True when the user may see one of the activity's agreements."""
    return any(can_see_agreement_ledger(user, link.agreement) for link in activity.agreement_links)


def organizer_liaison(user: User, activity: Activity) -> bool:
    """True when the user is a liaison of the organizing party in one of the activity's agreements."""
    return any(activity.organizer_org_id in liaison_org_ids(user, link.agreement) for link in activity.agreement_links)


def can_edit_activity(user: User, activity: Activity) -> bool:
    """The organizer's liaisons edit (and mark held) an activity until it is withdrawn."""
    return activity.status is not ActivityStatus.withdrawn and organizer_liaison(user, activity)


def can_withdraw_activity(user: User, activity: Activity) -> bool:
    """The organizer's liaisons withdraw an activity (with a reason); nobody deletes one."""
    return activity.status is not ActivityStatus.withdrawn and organizer_liaison(user, activity)


def confirming_org_ids(user: User, activity: Activity) -> set[int]:
    """Partner organizations (not the organizer) the user may confirm or dispute this activity for."""
    asked = {c.organization_id for c in activity.confirmations}
    mine: set[int] = set()
    for link in activity.agreement_links:
        mine |= liaison_org_ids(user, link.agreement)
    return (mine & asked) - {activity.organizer_org_id}


def can_confirm_activity(user: User, activity: Activity) -> bool:
    """A partner's liaison answers a held, not withdrawn activity."""
    return activity.status is ActivityStatus.held and bool(confirming_org_ids(user, activity))


def can_view_org_ledger(user: User, org: Organization) -> bool:
    """An organization's ledger: its members, reviewers above it, admins."""
    if not user.is_authenticated:
        return False
    return user.organization_id == org.id or oversees(user, org)


def can_view_committee_ledger(user: User) -> bool:
    """The committee-wide ledger: reviewers (their subtree) and admins (everything)."""
    return user.is_authenticated and (user.is_admin or committee_scope_root(user) is not None)


def can_log_under(user: User, agreement: Agreement, status: ActivityStatus = ActivityStatus.held) -> bool:
    """The user is a party liaison and the agreement's state allows logging with `status`."""
    return agreement.status in LOGGABLE_STATUSES[status] and bool(liaison_org_ids(user, agreement))


def can_import_into(user: User, agreement: Agreement) -> bool:
    """Importing a ledger file logs held activities, so it needs an active agreement and a liaison."""
    return can_log_under(user, agreement, ActivityStatus.held)


def can_view_import_run(user: User, run: ImportRun) -> bool:
    """An import is seen by whoever made it and by whoever may see the ledger it was made into."""
    return user.is_authenticated and (run.created_by_id == user.id or can_see_agreement_ledger(user, run.agreement))
