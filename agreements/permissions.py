"""Who may see and act on an agreement. Built on coop.auth.permissions' organization scope.

The rules, in one place:

- see: members of a party organization, committee reviewers whose subtree holds a party, admins;
- draft: committee reviewers (for parties in their subtree) and secretaries (for their own organization);
- edit a draft, send it for signing, recall it, renew, amend: the "drafters" — the draft's creator, the
  secretary of any party, a committee reviewer over any party (admins operate the platform, they do
  not write agreements for parties);
- sign or decline: only the secretary of a party, for that party, while it has not signed;
- terminate: a party's secretary (drafters may also abandon a draft).
"""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa

from agreements.models import Agreement, AgreementStatus, VersionKind, VersionState
from coop.auth.models import Role, User
from coop.auth.permissions import committee_scope_root
from coop.extensions import db
from coop.orgs.models import Organization


def party_org_id_of(user: User, agreement: Agreement) -> int | None:
    """The party organization the user belongs to in this agreement, or None."""
    if user.is_authenticated and user.organization_id in agreement.party_org_ids:
        return user.organization_id
    return None


def oversees_agreement(user: User, agreement: Agreement) -> bool:
    """A committee reviewer whose subtree contains any party (or an admin)."""
    if not user.is_authenticated:
        return False
    if user.is_admin:
        return True
    return reviews_agreement(user, agreement)


def reviews_agreement(user: User, agreement: Agreement) -> bool:
    """A committee reviewer (not merely an admin) whose subtree contains any party."""
    if not user.is_authenticated:
        return False
    root = committee_scope_root(user)
    return root is not None and any(p.organization.is_within(root) for p in agreement.parties)


def can_view_agreement(user: User, agreement: Agreement) -> bool:
    """Members of a party organization, reviewers above any party, and admins."""
    return party_org_id_of(user, agreement) is not None or oversees_agreement(user, agreement)


def is_agreement_liaison(user: User, agreement: Agreement) -> bool:
    """Named liaison on the agreement, or holding the liaison role in a party organization."""
    if not user.is_authenticated:
        return False
    if user.id in agreement.liaison_user_ids():
        return True
    return party_org_id_of(user, agreement) is not None and user.has_role(Role.liaison)


def is_party_secretary(user: User, agreement: Agreement) -> bool:
    """Secretary (signatory) of one of the agreement's party organizations."""
    return party_org_id_of(user, agreement) is not None and user.has_role(Role.secretary)


def is_secretary_of_party(user: User, party_org_ids: Iterable[int]) -> bool:
    """True when the user is an active secretary whose own organization is among `party_org_ids`."""
    return (
        user.is_authenticated and user.is_active and user.has_role(Role.secretary)
        and user.organization_id is not None and user.organization_id in set(party_org_ids)
    )


def can_draft_agreements(user: User) -> bool:
    """Committee reviewers and secretaries (of an active organization) may start a draft."""
    if not user.is_authenticated:
        return False
    if committee_scope_root(user) is not None:
        return True
    return user.has_role(Role.secretary) and user.organization is not None and user.organization.is_active


def may_draft_for(user: User, party_org_ids: Iterable[int]) -> bool:
    """A secretary drafts only agreements their organization is party to; a reviewer, those with a party in scope."""
    ids = list(party_org_ids)
    if not user.is_authenticated or not ids:
        return False
    if user.has_role(Role.secretary) and user.organization_id in ids:
        return True
    root = committee_scope_root(user)
    if root is None:
        return False
    return db.session.execute(
        sa.select(sa.func.count()).select_from(Organization)
        .where(Organization.id.in_(ids), Organization.path.startswith(root.path, autoescape=True))
    ).scalar_one() > 0


def is_drafter(user: User, agreement: Agreement) -> bool:
    """The draft's creator, a party's secretary, or a committee reviewer over a party."""
    if not user.is_authenticated or not user.is_active:
        return False
    if agreement.created_by_id is not None and agreement.created_by_id == user.id:
        return True
    return is_party_secretary(user, agreement) or reviews_agreement(user, agreement)


def can_edit_draft(user: User, agreement: Agreement) -> bool:
    """Drafters, while the agreement is a draft."""
    return agreement.status is AgreementStatus.draft and is_drafter(user, agreement)


def can_submit(user: User, agreement: Agreement) -> bool:
    """Drafters may send a draft for signing."""
    return can_edit_draft(user, agreement)


def can_recall(user: User, agreement: Agreement) -> bool:
    """Drafters may take an agreement back from signing to draft."""
    return agreement.status is AgreementStatus.signing and is_drafter(user, agreement)


def can_sign(user: User, agreement: Agreement) -> bool:
    """The secretary of a party whose turn it is and who has not signed the version being signed."""
    version = agreement.signing_version
    if version is None or not is_secretary_of_party(user, version.party_org_ids):
        return False
    return user.organization_id in version.next_signer_org_ids()


def can_decline(user: User, agreement: Agreement) -> bool:
    """The secretary of a party that has not signed yet (in any order) may decline."""
    version = agreement.signing_version
    if version is None or not is_secretary_of_party(user, version.party_org_ids):
        return False
    return user.organization_id not in version.signed_org_ids


def signing_party_of(user: User, agreement: Agreement) -> int | None:
    """The party the user would sign for on this agreement's signing version, if they are its secretary."""
    version = agreement.signing_version
    if version is not None and is_secretary_of_party(user, version.party_org_ids):
        return user.organization_id
    return None


def can_terminate(user: User, agreement: Agreement) -> bool:
    """A party's secretary ends a draft, signing or active agreement; drafters may also abandon a draft."""
    if agreement.status not in (AgreementStatus.draft, AgreementStatus.signing, AgreementStatus.active):
        return False
    if is_party_secretary(user, agreement) and user.is_active:
        return True
    return agreement.status is AgreementStatus.draft and is_drafter(user, agreement)


def can_renew(user: User, agreement: Agreement) -> bool:
    """Drafters may renew an active or expired agreement (whether one already exists is checked on renewal)."""
    return agreement.status in (AgreementStatus.active, AgreementStatus.expired) and is_drafter(user, agreement)


def can_amend(user: User, agreement: Agreement) -> bool:
    """Drafters may open an amendment of an active agreement with no amendment in progress."""
    return (agreement.status is AgreementStatus.active and agreement.pending_version is None
            and is_drafter(user, agreement))


def can_edit_amendment(user: User, agreement: Agreement) -> bool:
    """Drafters may edit and submit an amendment draft."""
    v = agreement.pending_version
    return (v is not None and v.kind is VersionKind.amendment and v.state is VersionState.draft
            and agreement.status is AgreementStatus.active and is_drafter(user, agreement))


def can_withdraw_amendment(user: User, agreement: Agreement) -> bool:
    """Drafters may abandon an amendment in progress."""
    v = agreement.pending_version
    return v is not None and v.kind is VersionKind.amendment and is_drafter(user, agreement)
