"""Joint activities under the 八联 categories: one entry, confirmed by the partners, in every ledger."""
from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.categories import CATEGORY_CODES
from coop.db import TimestampMixin, UTCDateTime, enum_column, now_utc
from coop.extensions import db
from coop.i18n import N_

if TYPE_CHECKING:
    from agreements.models import Agreement
    from coop.auth.models import User
    from coop.orgs.models import Organization


class ActivityStatus(enum.Enum):
    planned = "planned"
    held = "held"
    withdrawn = "withdrawn"

    @property
    def label(self) -> str:
        """The Chinese label: spreadsheets, PDFs, the API and stored revisions use it as it is."""
        return {"planned": N_("计划中"), "held": N_("已开展"), "withdrawn": N_("已撤回")}[self.value]

    @property
    def ui_label(self) -> str:
        """The label in the interface language (screens); Chinese outside a request."""
        return gettext(self.label)


class ConfirmationState(enum.Enum):
    pending = "pending"
    confirmed = "confirmed"
    disputed = "disputed"

    @property
    def label(self) -> str:
        """The Chinese label: spreadsheets, PDFs, the API and stored revisions use it as it is."""
        return {"pending": N_("待确认"), "confirmed": N_("已确认"), "disputed": N_("有异议")}[self.value]

    @property
    def ui_label(self) -> str:
        """The label in the interface language (screens); Chinese outside a request."""
        return gettext(self.label)


_category_check = "category IN (" + ", ".join(f"'{c}'" for c in CATEGORY_CODES) + ")"


class Activity(TimestampMixin, db.Model):
    """A joint activity, logged once by one party's liaison."""

    __tablename__ = "activities"
    __table_args__ = (
        sa.CheckConstraint(_category_check, name="category_code"),
        sa.CheckConstraint("party_member_count >= 0 AND party_member_count <= 100000", name="party_member_count_range"),
        sa.CheckConstraint("other_count >= 0 AND other_count <= 1000000", name="other_count_range"),
        # Reports and the cockpit count by date and category; the ledger lists by date.
        sa.Index("ix_activities_held_on_category", "held_on", "category"),
        # Group-scale aggregates (cockpit, reports, scores, reminders) read a period's activities by date and
        # need only these columns: with them in the index no table row is read (issue 10; see
        # coop/reports/progress.agreement_in).
        sa.Index("ix_activities_held_on_stats", "held_on", "status", "category", "confirmation", "organizer_org_id"),
        sa.Index("ix_activities_org_held_on", "organizer_org_id", "held_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # primary 八联 category
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    held_on: Mapped[date] = mapped_column(nullable=False)  # local date (Asia/Shanghai)
    start_time: Mapped[Optional[time]] = mapped_column()
    end_time: Mapped[Optional[time]] = mapped_column()
    place: Mapped[Optional[str]] = mapped_column(sa.String(200))
    party_member_count: Mapped[int] = mapped_column(nullable=False, default=0)
    other_count: Mapped[int] = mapped_column(nullable=False, default=0)
    summary: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")  # what was done
    outcome: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")  # what came of it
    status: Mapped[ActivityStatus] = enum_column(
        ActivityStatus, name="activity_status", nullable=False, default=ActivityStatus.held
    )
    # Denormalised from ActivityConfirmation rows by operations, so counting never needs a join.
    confirmation: Mapped[ConfirmationState] = enum_column(
        ConfirmationState, name="confirmation_state", nullable=False, default=ConfirmationState.pending
    )
    organizer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    withdrawn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[Optional[str]] = mapped_column(sa.Text)
    withdrawn_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))  # shown with the reason
    held_confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # when it became fully confirmed

    organizer_org: Mapped["Organization"] = relationship(foreign_keys=[organizer_org_id])
    created_by: Mapped["User"] = relationship(foreign_keys=[created_by_id])
    withdrawn_by: Mapped[Optional["User"]] = relationship(foreign_keys=[withdrawn_by_id])
    agreement_links: Mapped[list["ActivityAgreement"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="ActivityAgreement.id"
    )
    participants: Mapped[list["ActivityOrganization"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="ActivityOrganization.id"
    )
    tags: Mapped[list["ActivityTag"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="ActivityTag.id"
    )
    confirmations: Mapped[list["ActivityConfirmation"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="ActivityConfirmation.id"
    )
    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="Attachment.id"
    )
    revisions: Mapped[list["ActivityRevision"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="ActivityRevision.id"
    )

    def __repr__(self) -> str:
        return f"<Activity {self.id} {self.category} {self.held_on} {self.status.value}>"

    @property
    def agreement_ids(self) -> list[int]:
        return [l.agreement_id for l in self.agreement_links]

    @property
    def participant_org_ids(self) -> list[int]:
        return [p.organization_id for p in self.participants]

    @property
    def counts(self) -> bool:
        """True when the activity counts fully in progress: held and confirmed by every partner."""
        return self.status is ActivityStatus.held and self.confirmation is ConfirmationState.confirmed


class ActivityAgreement(db.Model):
    """An activity counted under an agreement (one activity may serve several agreements)."""

    __tablename__ = "activity_agreements"
    __table_args__ = (
        sa.UniqueConstraint("activity_id", "agreement_id"),
        sa.Index("ix_activity_agreements_agreement", "agreement_id", "activity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id"), nullable=False)

    activity: Mapped[Activity] = relationship(back_populates="agreement_links")
    agreement: Mapped["Agreement"] = relationship()

    def __repr__(self) -> str:
        return f"<ActivityAgreement activity={self.activity_id} agreement={self.agreement_id}>"


class ActivityOrganization(db.Model):
    """A participating organization (a party of the activity's agreement(s))."""

    __tablename__ = "activity_organizations"
    __table_args__ = (
        sa.UniqueConstraint("activity_id", "organization_id"),
        sa.Index("ix_activity_organizations_org", "organization_id", "activity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)

    activity: Mapped[Activity] = relationship(back_populates="participants")
    organization: Mapped["Organization"] = relationship()

    def __repr__(self) -> str:
        return f"<ActivityOrganization activity={self.activity_id} org={self.organization_id}>"


class ActivityTag(db.Model):
    """An extra 八联 category an activity also touches (the primary one is Activity.category)."""

    __tablename__ = "activity_tags"
    __table_args__ = (
        sa.UniqueConstraint("activity_id", "category"),
        sa.CheckConstraint(_category_check, name="category_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    category: Mapped[str] = mapped_column(sa.String(16), nullable=False)

    activity: Mapped[Activity] = relationship(back_populates="tags")

    def __repr__(self) -> str:
        return f"<ActivityTag {self.activity_id} {self.category}>"


class ActivityConfirmation(db.Model):
    """A partner organization's answer to an activity logged by another party."""

    __tablename__ = "activity_confirmations"
    __table_args__ = (
        sa.UniqueConstraint("activity_id", "organization_id"),
        # "What is waiting for my organization's confirmation?"
        sa.Index("ix_activity_confirmations_org_state", "organization_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    state: Mapped[ConfirmationState] = enum_column(
        ConfirmationState, name="confirmation_state", nullable=False, default=ConfirmationState.pending
    )
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    decided_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    comment: Mapped[Optional[str]] = mapped_column(sa.Text)

    activity: Mapped[Activity] = relationship(back_populates="confirmations")
    organization: Mapped["Organization"] = relationship()
    decided_by: Mapped[Optional["User"]] = relationship()

    def __repr__(self) -> str:
        return f"<ActivityConfirmation activity={self.activity_id} org={self.organization_id} {self.state.value}>"


class Attachment(db.Model):
    """A photo or sign-in sheet PDF, stored under instance/uploads with a server-chosen name."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(sa.String(10), nullable=False)  # 'image' | 'pdf'
    mime: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    original_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)  # shown only, never used as a path
    stored_path: Mapped[str] = mapped_column(sa.String(200), nullable=False, unique=True)
    thumb_path: Mapped[Optional[str]] = mapped_column(sa.String(200))
    size: Mapped[int] = mapped_column(nullable=False)
    sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    width: Mapped[Optional[int]] = mapped_column()
    height: Mapped[Optional[int]] = mapped_column()
    uploaded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)

    activity: Mapped[Activity] = relationship(back_populates="attachments")

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.kind} activity={self.activity_id}>"


class ActivityRevision(db.Model):
    """One edit of an activity: who changed which fields from what to what."""

    __tablename__ = "activity_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False, index=True)
    changed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    changes: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False, default=dict)  # field -> [old, new]
    note: Mapped[Optional[str]] = mapped_column(sa.String(300))

    activity: Mapped[Activity] = relationship(back_populates="revisions")
    changed_by: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<ActivityRevision {self.id} activity={self.activity_id}>"


class CategorySetting(db.Model):
    """Per-category requirements set by the platform (photos, outcome text). Missing row = defaults."""

    __tablename__ = "category_settings"
    __table_args__ = (sa.CheckConstraint(_category_check, name="category_code"),)

    category: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    requires_photo: Mapped[bool] = mapped_column(default=False, nullable=False)
    requires_outcome: Mapped[bool] = mapped_column(default=False, nullable=False)
    requires_place: Mapped[bool] = mapped_column(default=False, nullable=False)

    def __repr__(self) -> str:
        return f"<CategorySetting {self.category} photo={self.requires_photo}>"


class ImportStatus(enum.Enum):
    """Where a 工作台账 import stands. Only `done` wrote anything: `rejected` and `failed` wrote nothing."""

    queued = "queued"
    running = "running"
    done = "done"
    rejected = "rejected"  # the file had bad rows (listed in `errors`)
    failed = "failed"  # the import itself broke (or its process died: see coop.activities.jobs.is_stale)

    @property
    def finished(self) -> bool:
        return self not in (ImportStatus.queued, ImportStatus.running)


class ImportRun(db.Model):
    """One 工作台账 .xlsx import into one agreement, carried out in the background; its page polls the counters.

    The uploaded file is kept under UPLOAD_DIR/imports with a server-chosen name (`file_path`); the user's
    file name is for display only. Activities are written in the same transaction that marks the run done,
    so a run that is not done wrote nothing.
    """

    __tablename__ = "import_runs"
    __table_args__ = (
        sa.CheckConstraint(
            "total >= 0 AND checked >= 0 AND written >= 0 AND skipped >= 0", name="counts_positive"
        ),
        sa.Index("ix_import_runs_agreement_created", "agreement_id", "created_at"),
        sa.Index("ix_import_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id"), nullable=False)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False, index=True)
    file_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)  # the user's, shown only
    file_path: Mapped[str] = mapped_column(sa.String(200), nullable=False, unique=True)  # under UPLOAD_DIR/imports
    status: Mapped[ImportStatus] = enum_column(ImportStatus, name="import_status", nullable=False,
                                               default=ImportStatus.queued)
    total: Mapped[int] = mapped_column(nullable=False, default=0)  # data rows in the file (known once read)
    checked: Mapped[int] = mapped_column(nullable=False, default=0)  # rows checked so far
    written: Mapped[int] = mapped_column(nullable=False, default=0)  # activities created (set when done)
    skipped: Mapped[int] = mapped_column(nullable=False, default=0)  # withdrawn or duplicate rows, not imported
    # [line, kind, detail] per skipped row (coop.activities.jobs.SkippedRow); runs before duplicates were
    # checked stored bare line numbers, which are still read.
    skipped_lines: Mapped[list[list | int]] = mapped_column(sa.JSON, nullable=False, default=list)
    errors: Mapped[list[list]] = mapped_column(sa.JSON, nullable=False, default=list)  # [[line, message], …]
    message: Mapped[str] = mapped_column(sa.String(300), nullable=False, default="")  # why it failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc, nullable=False)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    agreement: Mapped["Agreement"] = relationship()
    created_by: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<ImportRun {self.id} agreement={self.agreement_id} {self.status.value} {self.checked}/{self.total}>"
