"""Co-building agreements (结对共建协议): parties, commitments per 八联 category, liaisons, lifecycle.

The rows on Agreement / AgreementParty / AgreementCommitment / AgreementLiaison are the agreement's
*effective* content (what activities, reminders, reports and review count against). Signed versions are
frozen separately (see AgreementVersion) and never edited in place.
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.categories import CATEGORY_CODES
from coop.db import TimestampMixin, UTCDateTime, enum_column, now_utc
from coop.extensions import db
from coop.i18n import N_

if TYPE_CHECKING:
    from coop.auth.models import User
    from coop.orgs.models import Organization


class AgreementStatus(enum.Enum):
    draft = "draft"
    signing = "signing"
    active = "active"
    expired = "expired"
    terminated = "terminated"

    @property
    def label(self) -> str:
        """The Chinese label: PDFs, the API, stored text and spreadsheets use it as it is."""
        return STATUS_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The label in the interface language (screens); Chinese outside a request."""
        return gettext(STATUS_LABELS[self])


STATUS_LABELS = {
    AgreementStatus.draft: N_("草稿"),
    AgreementStatus.signing: N_("签署中"),
    AgreementStatus.active: N_("生效中"),
    AgreementStatus.expired: N_("已到期"),
    AgreementStatus.terminated: N_("已终止"),
}

# The only legal moves; anything else is refused with IllegalTransition.
TRANSITIONS: dict[AgreementStatus, set[AgreementStatus]] = {
    AgreementStatus.draft: {AgreementStatus.signing, AgreementStatus.terminated},
    AgreementStatus.signing: {AgreementStatus.draft, AgreementStatus.active, AgreementStatus.terminated},
    AgreementStatus.active: {AgreementStatus.expired, AgreementStatus.terminated},
    AgreementStatus.expired: set(),
    AgreementStatus.terminated: set(),
}


class AgreementError(Exception):
    """A refusal on an agreement with a message meant for people, in the interface language (gettext when
    raised: Chinese outside a request); views show it as is."""


class IllegalTransition(AgreementError):
    """A state move the agreement's life does not allow; the message is for people (see AgreementError)."""


class VersionKind(enum.Enum):
    original = "original"  # the text first sent for signing (re-sent after a decline)
    amendment = "amendment"  # a change to an active agreement, signed again by every party

    @property
    def label(self) -> str:
        """The Chinese label (see AgreementStatus.label)."""
        return VERSION_KIND_LABELS[self.value]

    @property
    def ui_label(self) -> str:
        """The label in the interface language (screens)."""
        return gettext(VERSION_KIND_LABELS[self.value])


VERSION_KIND_LABELS = {"original": N_("原始文本"), "amendment": N_("修订")}


class VersionState(enum.Enum):
    draft = "draft"  # an amendment being edited (originals are edited on the Agreement rows)
    signing = "signing"  # frozen; the PDF collects signatures
    signed = "signed"  # every party signed and the platform sealed it: the text in force
    superseded = "superseded"  # was signed and in force, replaced by a later signed amendment
    declined = "declined"  # a party declined while it was being signed
    withdrawn = "withdrawn"  # abandoned (amendment withdrawn, agreement terminated or expired)

    @property
    def label(self) -> str:
        """The Chinese label (see AgreementStatus.label)."""
        return VERSION_STATE_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The label in the interface language (screens)."""
        return gettext(VERSION_STATE_LABELS[self])


VERSION_STATE_LABELS = {
    VersionState.draft: N_("修订草稿"),
    VersionState.signing: N_("签署中"),
    VersionState.signed: N_("现行有效"),
    VersionState.superseded: N_("已被修订取代"),
    VersionState.declined: N_("被拒签"),
    VersionState.withdrawn: N_("已撤回"),
}


_category_check = "category IN (" + ", ".join(f"'{c}'" for c in CATEGORY_CODES) + ")"


class Agreement(TimestampMixin, db.Model):
    """A pairing between two or more Party organizations."""

    __tablename__ = "agreements"
    __table_args__ = (
        sa.CheckConstraint("ends_on >= starts_on", name="term_order"),
        sa.Index("ix_agreements_status_ends", "status", "ends_on"),
        # The agreement list's order (newest change first): the database walks this index and stops after a
        # page of visible agreements instead of sorting them all (a group reviewer: 1.4 → 0.2 ms at 600).
        sa.Index("ix_agreements_updated", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    number: Mapped[Optional[str]] = mapped_column(sa.String(60))  # 文号, e.g. 共建〔2026〕3号
    purpose: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    status: Mapped[AgreementStatus] = enum_column(
        AgreementStatus, name="agreement_status", nullable=False, default=AgreementStatus.draft
    )
    starts_on: Mapped[date] = mapped_column(nullable=False)
    ends_on: Mapped[date] = mapped_column(nullable=False)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    renewed_from_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("agreements.id"), index=True)
    activated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    end_reason: Mapped[Optional[str]] = mapped_column(sa.Text)
    # Added by the agreements domain:
    ended_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    clauses: Mapped[list[str]] = mapped_column(sa.JSON, nullable=False, default=list)  # free clauses, in order
    # True: parties sign in their document order (甲方 first); False: in any order.
    signing_order_fixed: Mapped[bool] = mapped_column(nullable=False, default=False)
    template_code: Mapped[Optional[str]] = mapped_column(sa.String(40))  # the built-in template it started from

    parties: Mapped[list["AgreementParty"]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan", order_by="AgreementParty.position"
    )
    commitments: Mapped[list["AgreementCommitment"]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan"
    )
    liaisons: Mapped[list["AgreementLiaison"]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan"
    )
    created_by: Mapped[Optional["User"]] = relationship(foreign_keys=[created_by_id])
    renewed_from: Mapped[Optional["Agreement"]] = relationship(remote_side="Agreement.id")
    ended_by: Mapped[Optional["User"]] = relationship(foreign_keys=[ended_by_id])
    versions: Mapped[list["AgreementVersion"]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan", order_by="AgreementVersion.number"
    )

    def __repr__(self) -> str:
        return f"<Agreement {self.id} {self.status.value} {self.title!r}>"

    def move_to(self, new: AgreementStatus) -> None:
        """Change status if the lifecycle allows it, else raise IllegalTransition."""
        if new not in TRANSITIONS[self.status]:
            raise IllegalTransition(gettext("协议当前状态为“%(status)s”，不能变为“%(new)s”。",
                                            status=self.status.ui_label, new=new.ui_label))
        self.status = new

    @property
    def party_org_ids(self) -> list[int]:
        return [p.organization_id for p in self.parties]

    def commitment_for(self, category: str) -> Optional["AgreementCommitment"]:
        """The commitment row for a 八联 category code, if any."""
        for c in self.commitments:
            if c.category == category:
                return c
        return None

    def liaison_user_ids(self, organization_id: int | None = None) -> set[int]:
        """Users named liaison on this agreement (for one party, or for all)."""
        return {l.user_id for l in self.liaisons if organization_id is None or l.organization_id == organization_id}

    @property
    def current_version(self) -> Optional["AgreementVersion"]:
        """The signed version in force (None before the first version is fully signed)."""
        for v in reversed(self.versions):
            if v.state is VersionState.signed:
                return v
        return None

    @property
    def pending_version(self) -> Optional["AgreementVersion"]:
        """The version being edited (amendment draft) or signed, if any."""
        for v in reversed(self.versions):
            if v.state in (VersionState.draft, VersionState.signing):
                return v
        return None

    @property
    def signing_version(self) -> Optional["AgreementVersion"]:
        """The version collecting signatures right now, if any."""
        v = self.pending_version
        return v if v is not None and v.state is VersionState.signing else None


class AgreementParty(db.Model):
    """One signing party of an agreement."""

    __tablename__ = "agreement_parties"
    __table_args__ = (
        sa.UniqueConstraint("agreement_id", "organization_id"),
        # "Which agreements is this organization party to?" is asked on almost every page.
        sa.Index("ix_agreement_parties_org", "organization_id", "agreement_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    position: Mapped[int] = mapped_column(nullable=False, default=0)  # order in the document / signing order

    agreement: Mapped[Agreement] = relationship(back_populates="parties")
    organization: Mapped["Organization"] = relationship()

    def __repr__(self) -> str:
        return f"<AgreementParty agreement={self.agreement_id} org={self.organization_id}>"


class AgreementCommitment(db.Model):
    """What the parties promise per 八联 category: a count per year and optional text."""

    __tablename__ = "agreement_commitments"
    __table_args__ = (
        sa.UniqueConstraint("agreement_id", "category"),
        sa.CheckConstraint(_category_check, name="category_code"),
        sa.CheckConstraint("count_per_year >= 0 AND count_per_year <= 366", name="count_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False)
    category: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    count_per_year: Mapped[int] = mapped_column(nullable=False, default=0)
    text: Mapped[Optional[str]] = mapped_column(sa.String(500))

    agreement: Mapped[Agreement] = relationship(back_populates="commitments")

    def __repr__(self) -> str:
        return f"<AgreementCommitment {self.agreement_id} {self.category}={self.count_per_year}>"


class AgreementLiaison(db.Model):
    """A user named liaison for one party of an agreement."""

    __tablename__ = "agreement_liaisons"
    __table_args__ = (
        sa.UniqueConstraint("agreement_id", "organization_id", "user_id"),
        sa.Index("ix_agreement_liaisons_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)

    agreement: Mapped[Agreement] = relationship(back_populates="liaisons")
    organization: Mapped["Organization"] = relationship()
    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<AgreementLiaison agreement={self.agreement_id} org={self.organization_id} user={self.user_id}>"


class AgreementVersion(TimestampMixin, db.Model):
    """One frozen text of an agreement sent for signing, with its PDF. Never edited once frozen.

    ``content`` is the snapshot the PDF was made from (see agreements.content.AgreementContent);
    the PDF lives under ARCHIVE_DIR at ``pdf_path`` and grows by one incremental signature per party.
    """

    __tablename__ = "agreement_versions"
    __table_args__ = (
        sa.UniqueConstraint("agreement_id", "number"),
        sa.UniqueConstraint("verify_code"),
        sa.Index("ix_agreement_versions_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(nullable=False)  # 1, 2, … within the agreement
    kind: Mapped[VersionKind] = enum_column(VersionKind, name="agreement_version_kind", nullable=False)
    state: Mapped[VersionState] = enum_column(VersionState, name="agreement_version_state", nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False, default=dict)
    content_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64))  # of the canonical content JSON
    note: Mapped[Optional[str]] = mapped_column(sa.Text)  # 修订说明 of an amendment
    # Public code printed under the QR code; /verify/<code> shows the public summary.
    verify_code: Mapped[Optional[str]] = mapped_column(sa.String(32))
    pdf_path: Mapped[Optional[str]] = mapped_column(sa.String(300))  # relative to ARCHIVE_DIR, latest step
    # Where each party's signature goes, as laid out in the unsigned PDF: [[page, x1, y1, x2, y2], …].
    signature_boxes: Mapped[Optional[list]] = mapped_column(sa.JSON)
    unsigned_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64))  # the PDF as rendered, before signing
    pdf_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64))  # the file at pdf_path now
    final_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64), index=True)  # after the platform seal
    # The separate, sealed 签署完成证明 (completion record) listing every signature event.
    certificate_path: Mapped[Optional[str]] = mapped_column(sa.String(300))
    certificate_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64), index=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # last signature + seal
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # declined / withdrawn / superseded
    closed_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    declined_org_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"))
    close_reason: Mapped[Optional[str]] = mapped_column(sa.Text)

    agreement: Mapped[Agreement] = relationship(back_populates="versions")
    signatures: Mapped[list["AgreementSignature"]] = relationship(
        back_populates="version", cascade="all, delete-orphan", order_by="AgreementSignature.signed_at"
    )
    created_by: Mapped[Optional["User"]] = relationship(foreign_keys=[created_by_id])
    submitted_by: Mapped[Optional["User"]] = relationship(foreign_keys=[submitted_by_id])
    closed_by: Mapped[Optional["User"]] = relationship(foreign_keys=[closed_by_id])
    declined_org: Mapped[Optional["Organization"]] = relationship(foreign_keys=[declined_org_id])

    def __repr__(self) -> str:
        return f"<AgreementVersion {self.agreement_id}#{self.number} {self.kind.value} {self.state.value}>"

    @property
    def label(self) -> str:
        """第2版: the Chinese label printed in the PDF and written into audit summaries and file names."""
        return f"第{self.number}版"

    @property
    def ui_label(self) -> str:
        """The version's label in the interface language (screens)."""
        return gettext("第%(n)s版", n=self.number)

    @property
    def party_org_ids(self) -> list[int]:
        """Parties of this version, in document (and fixed signing) order."""
        return [p["organization_id"] for p in self.content.get("parties", [])]

    @property
    def signed_org_ids(self) -> set[int]:
        return {s.organization_id for s in self.signatures}

    def unsigned_org_ids(self) -> list[int]:
        """Parties that have not signed this version yet, in document order."""
        done = self.signed_org_ids
        return [o for o in self.party_org_ids if o not in done]

    def next_signer_org_ids(self) -> list[int]:
        """Parties that may sign now: all unsigned ones, or only the first when the order is fixed."""
        if self.state is not VersionState.signing:
            return []
        waiting = self.unsigned_org_ids()
        if self.content.get("signing_order_fixed") and waiting:
            return waiting[:1]
        return waiting


class AgreementSignature(db.Model):
    """One party's digital signature on one version: who, when, from where, and the PDF hashes."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (sa.UniqueConstraint("version_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agreement_versions.id", ondelete="CASCADE"), nullable=False
    )
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    signer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False, index=True)
    signer_name: Mapped[str] = mapped_column(sa.String(60), nullable=False)  # as signed, kept if renamed
    signer_title: Mapped[Optional[str]] = mapped_column(sa.String(60))
    organization_name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ip: Mapped[Optional[str]] = mapped_column(sa.String(64))
    field_name: Mapped[str] = mapped_column(sa.String(40), nullable=False)  # PDF signature field
    sha256_before: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    sha256_after: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    certificate_serial: Mapped[Optional[str]] = mapped_column(sa.String(64))
    certificate_sha256: Mapped[Optional[str]] = mapped_column(sa.String(64))

    version: Mapped[AgreementVersion] = relationship(back_populates="signatures")
    organization: Mapped["Organization"] = relationship()
    signer: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<AgreementSignature version={self.version_id} org={self.organization_id} by={self.signer_id}>"


class SignerKey(db.Model):
    """A signatory's key pair and certificate, issued by the platform CA on first signing.

    The private key is stored encrypted under the signer's own password (the platform cannot use it
    alone). Re-wrapped when the user changes the password; discarded (key_pem NULL, revoked_at set)
    when an admin resets it, so the next signature issues a new key.
    """

    __tablename__ = "agreement_signer_keys"
    __table_args__ = (sa.Index("ix_agreement_signer_keys_user", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    key_pem: Mapped[Optional[str]] = mapped_column(sa.Text)  # PKCS#8 encrypted; NULL once discarded
    cert_pem: Mapped[str] = mapped_column(sa.Text, nullable=False)
    serial: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    fingerprint_sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    common_name: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    organization_name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[Optional[str]] = mapped_column(sa.String(100))

    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<SignerKey {self.id} user={self.user_id} serial={self.serial} revoked={self.revoked_at is not None}>"
