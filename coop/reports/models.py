"""Archived monthly reports (月度报告) and the batch runs that make a whole month's set.

An archived report is a file under ARCHIVE_DIR plus one MonthlyReport row carrying its SHA-256. Files are
never rewritten: regenerating a report adds version N+1 next to the earlier ones.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import UTCDateTime, enum_column, now_utc
from coop.extensions import db
from coop.i18n import N_

if TYPE_CHECKING:
    from agreements.models import Agreement
    from coop.auth.models import User
    from coop.orgs.models import Organization


class ReportKind(enum.Enum):
    """The three report kinds (stored values are the API codes)."""
    agreement = "agreement"  # one pairing
    organization = "organization"  # every agreement one organization is party to
    committee = "committee"  # a reviewer's subtree, or the whole platform (organization_id NULL)

    @property
    def label(self) -> str:
        """The Chinese name (stored text, exports)."""
        return REPORT_KIND_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (screens)."""
        return gettext(REPORT_KIND_LABELS[self])


REPORT_KIND_LABELS = {
    ReportKind.agreement: N_("协议月度报告"),
    ReportKind.organization: N_("组织月度报告"),
    ReportKind.committee: N_("党委月度报告"),
}


def subject_key(kind: ReportKind, agreement_id: int | None, organization_id: int | None) -> str:
    """A non-null text naming what a report is about, e.g. "agreement:12", "committee:*" (whole platform).

    SQL unique constraints treat NULLs as distinct, so (kind, agreement_id, organization_id, …) alone could
    not stop two version-1 rows of the platform-wide report; this key can.
    """
    if kind is ReportKind.agreement:
        return f"agreement:{agreement_id}"
    if kind is ReportKind.organization:
        return f"organization:{organization_id}"
    return f"committee:{organization_id if organization_id is not None else '*'}"


class MonthlyReport(db.Model):
    """One archived version of one monthly report (the file never changes once this row exists)."""

    __tablename__ = "monthly_reports"
    __table_args__ = (
        sa.UniqueConstraint("kind", "agreement_id", "organization_id", "year", "month", "version"),
        sa.UniqueConstraint("subject_key", "year", "month", "version", name="uq_monthly_reports_subject_version"),
        sa.CheckConstraint("month >= 1 AND month <= 12", name="month_range"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint(
            "(kind = 'agreement' AND agreement_id IS NOT NULL AND organization_id IS NULL)"
            " OR (kind = 'organization' AND agreement_id IS NULL AND organization_id IS NOT NULL)"
            " OR (kind = 'committee' AND agreement_id IS NULL)",
            name="subject_matches_kind",
        ),
        # The reminders sweep asks "which agreement reports were made lately?"
        sa.Index("ix_monthly_reports_kind_created", "kind", "created_at"),
        sa.Index("ix_monthly_reports_period", "year", "month"),
        sa.Index("ix_monthly_reports_agreement", "agreement_id"),
        sa.Index("ix_monthly_reports_organization", "organization_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReportKind] = enum_column(ReportKind, name="report_kind", nullable=False)
    agreement_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("agreements.id"))
    organization_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"))
    subject_key: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    year: Mapped[int] = mapped_column(nullable=False)
    month: Mapped[int] = mapped_column(nullable=False)
    version: Mapped[int] = mapped_column(nullable=False, default=1)
    title: Mapped[str] = mapped_column(sa.String(300), nullable=False)  # as printed, for lists and file names
    sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    file_path: Mapped[str] = mapped_column(sa.String(300), nullable=False, unique=True)  # relative to ARCHIVE_DIR
    byte_size: Mapped[int] = mapped_column(nullable=False)
    page_count: Mapped[Optional[int]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))  # NULL when scheduled

    agreement: Mapped[Optional["Agreement"]] = relationship()
    organization: Mapped[Optional["Organization"]] = relationship()
    created_by: Mapped[Optional["User"]] = relationship()

    def __repr__(self) -> str:
        return f"<MonthlyReport {self.id} {self.subject_key} {self.year}-{self.month:02d} v{self.version}>"

    @property
    def month_key(self) -> str:
        return f"{self.year}-{self.month:02d}"


class RunStatus(enum.Enum):
    """Where a month batch stands."""
    running = "running"
    done = "done"
    failed = "failed"

    @property
    def label(self) -> str:
        """The Chinese name."""
        return RUN_STATUS_LABELS[self.value]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (the progress page and its polling)."""
        return gettext(RUN_STATUS_LABELS[self.value])


RUN_STATUS_LABELS = {"running": N_("进行中"), "done": N_("已完成"), "failed": N_("失败")}


class ReportRun(db.Model):
    """A batch generating every report of a month, started from the screen; the page polls its counters."""

    __tablename__ = "report_runs"
    __table_args__ = (
        sa.CheckConstraint("month >= 1 AND month <= 12", name="month_range"),
        sa.CheckConstraint("done >= 0 AND failed >= 0 AND total >= 0", name="counts_positive"),
        sa.Index("ix_report_runs_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(nullable=False)
    month: Mapped[int] = mapped_column(nullable=False)
    force: Mapped[bool] = mapped_column(nullable=False, default=False)
    status: Mapped[RunStatus] = enum_column(RunStatus, name="report_run_status", nullable=False, default=RunStatus.running)
    total: Mapped[int] = mapped_column(nullable=False, default=0)  # reports to make (known after listing)
    done: Mapped[int] = mapped_column(nullable=False, default=0)  # made or already there
    failed: Mapped[int] = mapped_column(nullable=False, default=0)
    created: Mapped[int] = mapped_column(nullable=False, default=0)  # new files written
    message: Mapped[str] = mapped_column(sa.String(300), nullable=False, default="")  # last line shown
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc, nullable=False)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))

    created_by: Mapped[Optional["User"]] = relationship()

    def __repr__(self) -> str:
        return f"<ReportRun {self.id} {self.year}-{self.month:02d} {self.status.value} {self.done}/{self.total}>"

    @property
    def month_key(self) -> str:
        return f"{self.year}-{self.month:02d}"
