"""Who may review, evaluate, score and see rankings — every committee-review check in one place.

- cockpit, scores, exports: committee reviewers (their organization's subtree) and admins (everything);
- evaluate an activity: a reviewer over a party of one of the activity's agreements, or an admin;
- rate a partner (two-way evaluation): a party's secretary or liaison, for their own party;
- see an organization's score ("why this score"): reviewers over it, admins, and its own members;
- set rules, adjust points, publish the ranking: reviewers for their scope, admins for the platform.
"""
from __future__ import annotations

from agreements.models import Agreement
from agreements.permissions import reviews_agreement
from coop.activities.models import Activity
from coop.activities.permissions import liaison_org_ids
from coop.auth.models import Role, User
from coop.auth.permissions import committee_scope_root, oversees
from coop.orgs.models import Organization


def is_reviewer(user: User) -> bool:
    """Committee reviewers and admins: the people the cockpit is for."""
    return user.is_authenticated and (user.is_admin or committee_scope_root(user) is not None)


def can_view_cockpit(user: User) -> bool:
    """Only committee reviewers (their subtree) and admins (everything) see the cockpit."""
    return is_reviewer(user)


def can_review_agreement(user: User, agreement: Agreement) -> bool:
    """Admins, or a reviewer whose subtree holds one of the agreement's parties."""
    if not user.is_authenticated:
        return False
    return user.is_admin or reviews_agreement(user, agreement)


def can_evaluate_activity(user: User, activity: Activity) -> bool:
    """A reviewer over a party of one of the activity's agreements (or an admin) rates held activities."""
    if not user.is_authenticated or activity.status.value != "held":
        return False
    return any(can_review_agreement(user, link.agreement) for link in activity.agreement_links)


def can_view_org_score(user: User, org: Organization) -> bool:
    """Reviewers over the organization, admins, and the organization's own members."""
    return user.is_authenticated and (user.organization_id == org.id or oversees(user, org))


def can_adjust_points(user: User, org: Organization) -> bool:
    """Reviewers over the organization and admins add manual adjustments."""
    return oversees(user, org)


def can_manage_scope(user: User, scope: Organization | None) -> bool:
    """Rules and settings of a scope: its own committee reviewers; the platform scope (None): admins."""
    if not user.is_authenticated:
        return False
    if user.is_admin:
        return True
    root = committee_scope_root(user)
    return scope is not None and root is not None and root.id == scope.id


def partner_org_ids_for(user: User, agreement: Agreement) -> set[int]:
    """Parties of `agreement` the user rates partners for: their own as secretary, or as liaison."""
    if not user.is_authenticated:
        return set()
    orgs = set(liaison_org_ids(user, agreement))
    if user.organization_id in agreement.party_org_ids and user.has_role(Role.secretary):
        orgs.add(user.organization_id)
    return orgs


def can_view_partner_evaluations(user: User, agreement: Agreement) -> bool:
    """Members of a party (and its named liaisons), reviewers over a party, admins."""
    if not user.is_authenticated:
        return False
    return (
        user.organization_id in agreement.party_org_ids
        or user.id in agreement.liaison_user_ids()
        or can_review_agreement(user, agreement)
    )
