"""Committee review: activity evaluations, partner (two-way) evaluations, point rules, adjustments, settings.

Scores are never stored: coop/review/scoring.py computes them from activities, evaluations, rules and the
audited adjustments here, so a score can always be explained line by line.
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import TimestampMixin, UTCDateTime, enum_column, now_utc
from coop.extensions import db
from coop.i18n import N_

if TYPE_CHECKING:
    from agreements.models import Agreement
    from coop.activities.models import Activity
    from coop.auth.models import User
    from coop.orgs.models import Organization


class Rating(enum.Enum):
    excellent = "excellent"
    good = "good"
    fair = "fair"

    @property
    def label(self) -> str:
        """The Chinese name (audit log, exports)."""
        return RATING_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (screens)."""
        return gettext(RATING_LABELS[self])


RATING_LABELS = {Rating.excellent: N_("优秀"), Rating.good: N_("良好"), Rating.fair: N_("一般")}


class ActivityEvaluation(TimestampMixin, db.Model):
    """A committee reviewer's rating of one activity; one current evaluation per reviewer and activity."""

    __tablename__ = "review_activity_evaluations"
    __table_args__ = (
        sa.UniqueConstraint("activity_id", "reviewer_id"),
        # Typical cases are listed by period for reports and publicity.
        sa.Index("ix_review_activity_evaluations_typical", "typical_case", "activity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    rating: Mapped[Rating] = enum_column(Rating, name="review_rating", nullable=False)
    comment: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    typical_case: Mapped[bool] = mapped_column(nullable=False, default=False)

    activity: Mapped["Activity"] = relationship()
    reviewer: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<ActivityEvaluation activity={self.activity_id} by={self.reviewer_id} {self.rating.value}>"


class PartnerEvaluation(TimestampMixin, db.Model):
    """One party's quarterly rating (1–5 stars) of a partner's contribution to a pairing."""

    __tablename__ = "review_partner_evaluations"
    __table_args__ = (
        sa.UniqueConstraint("agreement_id", "year", "quarter", "from_org_id", "to_org_id"),
        sa.CheckConstraint("score >= 1 AND score <= 5", name="score_range"),
        sa.CheckConstraint("quarter >= 1 AND quarter <= 4", name="quarter_range"),
        sa.CheckConstraint("from_org_id <> to_org_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False)
    year: Mapped[int] = mapped_column(nullable=False)
    quarter: Mapped[int] = mapped_column(nullable=False)
    from_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    to_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    score: Mapped[int] = mapped_column(nullable=False)
    comment: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)

    agreement: Mapped["Agreement"] = relationship()
    from_org: Mapped["Organization"] = relationship(foreign_keys=[from_org_id])
    to_org: Mapped["Organization"] = relationship(foreign_keys=[to_org_id])
    by: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return (f"<PartnerEvaluation agreement={self.agreement_id} {self.year}Q{self.quarter} "
                f"{self.from_org_id}->{self.to_org_id} {self.score}>")


class PointRule(TimestampMixin, db.Model):
    """How many points a rule gives inside a committee's scope (scope_org_id NULL: platform default).

    The rule codes are fixed by coop/review/scoring.py (the computation is code); committees set the points
    and may switch a rule off for their subtree. The nearest scope above an organization wins.
    """

    __tablename__ = "review_point_rules"
    __table_args__ = (
        sa.UniqueConstraint("scope_org_id", "code"),
        sa.CheckConstraint("points >= -100 AND points <= 100", name="points_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope_org_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    label: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    points: Mapped[int] = mapped_column(nullable=False)
    active: Mapped[bool] = mapped_column(nullable=False, default=True)
    updated_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))

    scope_org: Mapped[Optional["Organization"]] = relationship()

    def __repr__(self) -> str:
        return f"<PointRule scope={self.scope_org_id} {self.code}={self.points} active={self.active}>"


class PointAdjustment(db.Model):
    """A manual change to an organization's points, with the reason; written through an audited operation."""

    __tablename__ = "review_point_adjustments"
    __table_args__ = (
        sa.CheckConstraint("points <> 0 AND points >= -100 AND points <= 100", name="points_range"),
        sa.CheckConstraint("length(reason) > 0", name="reason_given"),
        sa.Index("ix_review_point_adjustments_org_on", "org_id", "applies_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), nullable=False)
    points: Mapped[int] = mapped_column(nullable=False)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # The local date whose year / quarter the adjustment counts in (a year-end assessment made in January
    # still belongs to December).
    applies_on: Mapped[date] = mapped_column(nullable=False)
    by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=now_utc)

    organization: Mapped["Organization"] = relationship()
    by: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<PointAdjustment org={self.org_id} {self.points:+d} on={self.applies_on}>"


class ReviewSetting(TimestampMixin, db.Model):
    """A committee scope's review choices (scope_org_id NULL: the platform, set by admins)."""

    __tablename__ = "review_settings"
    __table_args__ = (
        sa.UniqueConstraint("scope_org_id"),
        sa.CheckConstraint("stalled_days >= 7 AND stalled_days <= 365", name="stalled_days_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope_org_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"))
    # The quarterly ranking (晾晒比) is the committee's choice to publish: off until it says otherwise.
    ranking_published: Mapped[bool] = mapped_column(nullable=False, default=False)
    stalled_days: Mapped[int] = mapped_column(nullable=False, default=30)
    updated_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))

    scope_org: Mapped[Optional["Organization"]] = relationship()

    def __repr__(self) -> str:
        return f"<ReviewSetting scope={self.scope_org_id} ranking={self.ranking_published} stalled={self.stalled_days}>"
