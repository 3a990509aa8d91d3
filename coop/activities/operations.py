"""Logging, editing, confirming and withdrawing joint activities — one entry, two ledgers.

Rules decided here (and shown to people as refusals through ActivityRefused, in the interface language of the
request — Chinese for the API and outside a request; what is stored, revisions and audit summaries, stays Chinese):

- Only a liaison of a party logs an activity, for their own party, which becomes the organizer.
  A *held* activity needs every chosen agreement to be active; a *planned* one may also be put on an
  agreement that is still being signed (it can be marked held once the agreement is active). The date
  must lie within every chosen agreement's term, and a held activity cannot be dated in the future.
- Co-building is joint: under each chosen agreement at least one other party must take part. Each
  participating partner gets one confirmation request (pending); the organizer does not confirm itself.
- Required fields: category, title, date and participating organizations. A category's settings may
  also require a place, an outcome or at least one photo — checked when the activity is (marked) held,
  since a plan has neither photos nor results yet.
- Partners confirm or dispute held activities only; a dispute needs a comment. The activity's
  `confirmation` is confirmed when every partner confirmed, disputed when any disputed, else pending.
- Editing is for the organizer's liaisons and keeps a revision (field → [old, new]). Changing anything
  substantive (everything but extra tags) after a partner has answered resets every answer to pending:
  the partner confirmed the old facts, not the new ones. The agreements of an activity cannot be
  changed; withdraw and log again instead.
- Nothing is ever deleted: an activity is withdrawn with a reason, visibly, and stops counting.
- Attachments: checked uploads (coop.uploads) are stored first and removed again automatically when the
  transaction does not commit; removed attachments lose their files only after the commit.

Operations flush and audit but never commit.
"""
from __future__ import annotations

import enum
from datetime import date, time
from pathlib import Path
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from agreements.models import Agreement
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    ActivityRevision,
    ActivityStatus,
    ActivityTag,
    Attachment,
    CategorySetting,
    ConfirmationState,
)
from coop.activities.permissions import (
    LOGGABLE_STATUSES,
    can_edit_activity,
    can_withdraw_activity,
    confirming_org_ids,
    organizer_org_for,
)
from coop.audit.operations import Entry, record_many
from coop.auth.models import User
from coop.categories import CATEGORY_BY_CODE, CATEGORY_CODES
from coop.db import now_utc
from coop.extensions import db
from coop.formatting import cn_date, local_today, ui_date
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.uploads import CheckedUpload, delete_stored, store_upload

MAX_PARTY_MEMBERS = 100_000
MAX_OTHERS = 1_000_000
MAX_ATTACHMENTS_PER_ACTIVITY = 30

# Human labels of the fields kept in revisions (the history shown on the activity page, where they are
# translated with _(); the audit summary keeps the Chinese).
FIELD_LABELS = {
    "category": N_("类别"),
    "tags": N_("其他涉及类别"),
    "title": N_("活动名称"),
    "held_on": N_("日期"),
    "start_time": N_("开始时间"),
    "end_time": N_("结束时间"),
    "place": N_("地点"),
    "organization_ids": N_("参与组织"),
    "party_member_count": N_("党员人数"),
    "other_count": N_("其他人数"),
    "summary": N_("活动内容"),
    "outcome": N_("活动成效"),
    "status": N_("状态"),
    "confirmation": N_("确认情况"),
    "attachments": N_("附件"),
    "withdrawn_reason": N_("撤回原因"),
}
EDITABLE_FIELDS = (
    "category", "tags", "title", "held_on", "start_time", "end_time", "place", "organization_ids",
    "party_member_count", "other_count", "summary", "outcome",
)
# Partners confirmed the facts; extra tags are classification only and do not reopen confirmation.
NON_SUBSTANTIVE_FIELDS = {"tags"}
# Notes the operations write on revisions. Stored in Chinese like every revision; the change history shows them
# in the interface language (coop.activities.views._revision_note), joined to the editor's own note by "；".
NOTE_RESET = N_("内容已修改，伙伴的确认已重置为待确认")
NOTE_HELD = N_("计划活动已开展")
NOTE_WITHDRAWN = N_("撤回")
NOTE_ATTACHED = N_("添加附件")
NOTE_DETACHED = N_("删除附件")
REVISION_NOTES = frozenset({NOTE_RESET, NOTE_HELD, NOTE_WITHDRAWN, NOTE_ATTACHED, NOTE_DETACHED})


class ActivityRefused(Exception):
    """An activity change that is not allowed; the message is for people (in the interface language), `field`
    names the form field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- attachment files and the transaction --------------------------------------------------------------
#
# Files are written before the rows that point to them. If the transaction then rolls back (or the
# session is closed without a commit), the new files are deleted; files of removed attachments are
# deleted only after the commit that removed their rows. Both lists live in session.info, so a view,
# a CLI command and a test get the same behaviour without remembering to clean up.

_NEW_FILES = "activities.new_files"
_DOOMED_FILES = "activities.doomed_files"


@event.listens_for(Session, "after_commit")
def _files_after_commit(session: Session) -> None:
    session.info.pop(_NEW_FILES, None)
    for root, rel in session.info.pop(_DOOMED_FILES, []):
        try:
            delete_stored(root, rel)
        except (OSError, ValueError):  # the row is gone; a leftover file is harmless and logged
            current_app.logger.warning("could not delete attachment file %s", rel)


@event.listens_for(Session, "after_transaction_end")
def _files_after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is not None:
        return  # a savepoint: the outer transaction decides
    # Still listed here means the transaction ended without a commit (after_commit clears the list).
    for root, rel in session.info.pop(_NEW_FILES, []):
        try:
            delete_stored(root, rel)
        except (OSError, ValueError):
            pass
    session.info.pop(_DOOMED_FILES, None)


def attachments_root() -> Path:
    """The directory attachments are stored under (config UPLOAD_DIR, inside instance/ by default)."""
    return Path(current_app.config["UPLOAD_DIR"])


def delete_unless_committed(root: Path, relative_path: str) -> None:
    """A file just written for the current transaction: deleted if the transaction does not commit."""
    db.session.info.setdefault(_NEW_FILES, []).append((root, relative_path))


def _store(root: Path, checked: CheckedUpload):
    stored = store_upload(root, checked)
    delete_unless_committed(root, stored.relative_path)
    if stored.thumb_relative_path:
        delete_unless_committed(root, stored.thumb_relative_path)
    return stored


# --- validation ------------------------------------------------------------------------------------------


def category_setting(category: str, loaded: dict[str, CategorySetting] | None = None) -> CategorySetting:
    """The category's requirements (a row with defaults when none is stored); `loaded` is every stored row by
    code (all_category_settings), for callers that validate many rows."""
    row = loaded.get(category) if loaded is not None else db.session.get(CategorySetting, category)
    return row or CategorySetting(category=category, requires_photo=False, requires_outcome=False, requires_place=False)


def all_category_settings() -> dict[str, CategorySetting]:
    return {row.category: row for row in db.session.scalars(sa.select(CategorySetting))}


def _status(value) -> ActivityStatus:
    try:
        status = ActivityStatus(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        raise ActivityRefused(_("状态只能是“计划中”或“已开展”。"), "status") from None
    if status is ActivityStatus.withdrawn:
        raise ActivityRefused(_("不能直接登记为“已撤回”。"), "status")
    return status


def _term_text(agreement: Agreement) -> str:
    """An agreement's term for a refusal shown on screen (dates in the interface language)."""
    return _("%(start)s至%(end)s", start=ui_date(agreement.starts_on), end=ui_date(agreement.ends_on))


def _count(value, field: str, label: str, maximum: int) -> int:
    """`label`: the field's Chinese name marked with N_ (translated here)."""
    if value in (None, ""):
        return 0
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ActivityRefused(_("%(label)s必须是整数。", label=_(label)), field) from None
    if isinstance(value, float) and value != n:
        raise ActivityRefused(_("%(label)s必须是整数。", label=_(label)), field)
    if n < 0 or n > maximum:
        raise ActivityRefused(_("%(label)s应在 0 到 %(max)s 之间。", label=_(label), max=maximum), field)
    return n


def _text(value, field: str, label: str, max_len: int | None = None, required: bool = False) -> str:
    """`label`: the field's Chinese name marked with N_ (translated here)."""
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if required and not text:
        raise ActivityRefused(_("请填写%(label)s。", label=_(label)), field)
    if max_len is not None and len(text) > max_len:
        raise ActivityRefused(_("%(label)s不能超过 %(n)s 个字。", label=_(label), n=max_len), field)
    return text


def validate_activity(
    actor: User,
    *,
    agreements: Sequence[Agreement],
    category: str,
    title: str,
    held_on: date | None,
    organization_ids: Iterable[int],
    status=ActivityStatus.held,
    tags: Iterable[str] = (),
    start_time: time | None = None,
    end_time: time | None = None,
    place: str | None = None,
    party_member_count: int | None = 0,
    other_count: int | None = 0,
    summary: str | None = "",
    outcome: str | None = "",
    photo_count: int = 0,
    organizer_org_id: int | None = None,
    settings: dict[str, CategorySetting] | None = None,
) -> dict[str, Any]:
    """Check an activity's content against every rule; return the cleaned values or raise ActivityRefused.

    `photo_count` is the number of images the activity will have (existing + new). `organizer_org_id` is
    given for edits (the organizer never changes); for new activities it is derived from the actor. `settings`:
    all_category_settings(), read once by a caller that validates many activities.
    """
    agreements = list(dict.fromkeys(agreements))
    if not agreements:
        raise ActivityRefused(_("请选择活动所属的共建协议。"), "agreements")
    status = _status(status)
    if organizer_org_id is None:
        organizer_org_id = organizer_org_for(actor, agreements)
        if organizer_org_id is None:
            raise ActivityRefused(_("只有协议各方的联络员可以登记活动；如协议不止一份，您须是同一组织在每份协议中的联络员。"),
                                  "agreements")
    for agreement in agreements:
        if agreement.status not in LOGGABLE_STATUSES[status]:
            if status is ActivityStatus.held and agreement.status in LOGGABLE_STATUSES[ActivityStatus.planned]:
                raise ActivityRefused(
                    _("协议“%(title)s”尚在%(status)s，只能登记计划活动；协议生效后再登记已开展的活动。",
                      title=agreement.title, status=agreement.status.ui_label),
                    "agreements",
                )
            raise ActivityRefused(_("协议“%(title)s”当前为“%(status)s”，不能登记活动。", title=agreement.title,
                                    status=agreement.status.ui_label), "agreements")

    if category not in CATEGORY_CODES:
        raise ActivityRefused(_("请选择活动类别（八联之一）。"), "category")
    tag_codes = []
    for code in tags or ():
        if code not in CATEGORY_CODES:
            raise ActivityRefused(_("其他涉及类别只能是八联中的类别。"), "tags")
        if code != category and code not in tag_codes:
            tag_codes.append(code)
    title = _text(title, "title", N_("活动名称"), 200, required=True)

    if held_on is None:
        raise ActivityRefused(_("请填写活动日期。"), "held_on")
    for agreement in agreements:
        if not (agreement.starts_on <= held_on <= agreement.ends_on):
            raise ActivityRefused(
                _("活动日期须在协议“%(title)s”的期限（%(term)s）内。", title=agreement.title,
                  term=_term_text(agreement)), "held_on"
            )
    if status is ActivityStatus.held and held_on > local_today():
        raise ActivityRefused(_("已开展的活动日期不能晚于今天；尚未举行的活动请选择“计划中”。"), "held_on")
    if start_time and end_time and end_time < start_time:
        raise ActivityRefused(_("结束时间不能早于开始时间。"), "end_time")

    parties: set[int] = set()
    for agreement in agreements:
        parties |= set(agreement.party_org_ids)
    participants = [organizer_org_id] + [int(i) for i in organization_ids if int(i) != organizer_org_id]
    participants = list(dict.fromkeys(participants))
    strangers = [i for i in participants if i not in parties]
    if strangers:
        raise ActivityRefused(_("参与组织只能是所选协议的签约方。"), "organization_ids")
    for agreement in agreements:
        partners = set(agreement.party_org_ids) & set(participants) - {organizer_org_id}
        if not partners:
            raise ActivityRefused(
                _("共建活动须有协议伙伴参加：请至少勾选协议“%(title)s”的另一方。", title=agreement.title),
                "organization_ids",
            )

    place = _text(place, "place", N_("地点"), 200)
    summary = _text(summary, "summary", N_("活动内容"), 5000)
    outcome = _text(outcome, "outcome", N_("活动成效"), 5000)
    party_member_count = _count(party_member_count, "party_member_count", N_("党员人数"), MAX_PARTY_MEMBERS)
    other_count = _count(other_count, "other_count", N_("其他人数"), MAX_OTHERS)

    if status is ActivityStatus.held:
        setting = category_setting(category, settings)
        name = CATEGORY_BY_CODE[category].label
        if setting.requires_place and not place:
            raise ActivityRefused(_("“%(category)s”类活动须填写地点。", category=name), "place")
        if setting.requires_outcome and not outcome:
            raise ActivityRefused(_("“%(category)s”类活动须填写活动成效。", category=name), "outcome")
        if setting.requires_photo and photo_count < 1:
            raise ActivityRefused(_("“%(category)s”类活动须上传至少一张活动照片。", category=name), "photos")

    return {
        "agreements": agreements,
        "status": status,
        "organizer_org_id": organizer_org_id,
        "category": category,
        "tags": tag_codes,
        "title": title,
        "held_on": held_on,
        "start_time": start_time,
        "end_time": end_time,
        "place": place or None,
        "organization_ids": participants,
        "party_member_count": party_member_count,
        "other_count": other_count,
        "summary": summary,
        "outcome": outcome,
    }


def _check_attachment_budget(activity: Activity | None, uploads: Sequence[CheckedUpload]) -> None:
    existing = list(activity.attachments) if activity is not None else []
    max_file = current_app.config["UPLOAD_MAX_FILE_BYTES"]
    max_total = current_app.config["UPLOAD_MAX_ACTIVITY_BYTES"]
    for up in uploads:
        if up.kind not in ("image", "pdf"):
            raise ActivityRefused(_("只能上传图片（JPEG、PNG、WebP）或 PDF 文件。"), "photos")
        if up.size > max_file:
            raise ActivityRefused(_("文件“%(name)s”超过单个文件 %(mb)s MB 的上限。", name=up.display_name,
                                    mb=max_file // (1024 * 1024)), "photos")
    if len(existing) + len(uploads) > MAX_ATTACHMENTS_PER_ACTIVITY:
        raise ActivityRefused(_("每个活动最多 %(n)s 个附件。", n=MAX_ATTACHMENTS_PER_ACTIVITY), "photos")
    total = sum(a.size for a in existing) + sum(u.size for u in uploads)
    if total > max_total:
        raise ActivityRefused(
            _("附件合计不能超过 %(max)s MB（本次上传后将达到 %(total)s MB）。", max=max_total // (1024 * 1024),
              total=f"{total / (1024 * 1024):.1f}"),
            "photos",
        )


def _attach(actor: User, activity: Activity, uploads: Sequence[CheckedUpload], root: Path | None) -> list[Attachment]:
    root = root or attachments_root()
    rows = []
    for up in uploads:
        stored = _store(root, up)
        att = Attachment(
            kind=up.kind, mime=up.mime, original_name=up.display_name[:200], stored_path=stored.relative_path,
            thumb_path=stored.thumb_relative_path, size=up.size, sha256=up.sha256, width=up.width,
            height=up.height, uploaded_by_id=actor.id,
        )
        activity.attachments.append(att)
        rows.append(att)
    return rows


# --- snapshots for revisions -------------------------------------------------------------------------------


def _org_names(ids: Iterable[int]) -> list[str]:
    ids = list(ids)
    if not ids:
        return []
    names = dict(db.session.execute(sa.select(Organization.id, Organization.name).where(Organization.id.in_(ids))).all())
    return [names.get(i, str(i)) for i in ids]


def _display(field: str, value) -> Any:
    """A JSON-safe, human-readable value for the revision history."""
    if value is None:
        return None
    if field == "category":
        return CATEGORY_BY_CODE[value].name if value in CATEGORY_BY_CODE else value
    if field == "tags":
        return [CATEGORY_BY_CODE[c].name if c in CATEGORY_BY_CODE else c for c in value]
    if field == "organization_ids":
        return _org_names(value)
    if isinstance(value, enum.Enum):
        return getattr(value, "label", value.value)
    if isinstance(value, date):
        return cn_date(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


def _current(activity: Activity, field: str):
    if field == "tags":
        return [t.category for t in activity.tags]
    if field == "organization_ids":
        return activity.participant_org_ids
    return getattr(activity, field)


def _same(field: str, old, new) -> bool:
    if field in ("tags", "organization_ids"):
        return set(old or []) == set(new or [])
    if field in ("place", "summary", "outcome"):
        return (old or "") == (new or "")
    return old == new


# --- applying values -------------------------------------------------------------------------------------------


def _set_participants(activity: Activity, org_ids: list[int]) -> None:
    """Make the participants and the confirmation requests match `org_ids` (organizer first)."""
    wanted = list(dict.fromkeys(org_ids))
    for row in list(activity.participants):
        if row.organization_id not in wanted:
            activity.participants.remove(row)
    have = set(activity.participant_org_ids)
    for org_id in wanted:
        if org_id not in have:
            activity.participants.append(ActivityOrganization(organization_id=org_id))
    partners = [i for i in wanted if i != activity.organizer_org_id]
    for conf in list(activity.confirmations):
        if conf.organization_id not in partners:
            activity.confirmations.remove(conf)
    asked = {c.organization_id for c in activity.confirmations}
    for org_id in partners:
        if org_id not in asked:
            activity.confirmations.append(ActivityConfirmation(organization_id=org_id, requested_at=now_utc()))


def _set_tags(activity: Activity, codes: list[str]) -> None:
    for row in list(activity.tags):
        if row.category not in codes:
            activity.tags.remove(row)
    have = {t.category for t in activity.tags}
    for code in codes:
        if code not in have:
            activity.tags.append(ActivityTag(category=code))


def refresh_confirmation(activity: Activity) -> ConfirmationState:
    """Recompute Activity.confirmation (and held_confirmed_at) from the partners' answers."""
    states = [c.state for c in activity.confirmations]
    if any(s is ConfirmationState.disputed for s in states):
        new = ConfirmationState.disputed
    elif states and all(s is ConfirmationState.confirmed for s in states):
        new = ConfirmationState.confirmed
    else:
        new = ConfirmationState.pending
    if new is ConfirmationState.confirmed and activity.confirmation is not ConfirmationState.confirmed:
        activity.held_confirmed_at = now_utc()
    elif new is not ConfirmationState.confirmed:
        activity.held_confirmed_at = None
    activity.confirmation = new
    return new


def _reset_confirmations(activity: Activity) -> bool:
    """Put every answered confirmation back to pending; True when any had been answered."""
    reset = False
    for conf in activity.confirmations:
        if conf.state is not ConfirmationState.pending:
            conf.state = ConfirmationState.pending
            conf.decided_by_id = None
            conf.decided_at = None
            conf.requested_at = now_utc()
            reset = True
    return reset


def _entry(kind: str, summary: str, actor: User | None, activity: Activity, **detail) -> Entry:
    return Entry(kind, summary, actor=actor, organization_id=activity.organizer_org_id, target=activity,
                 detail={"activity_id": activity.id, "agreement_ids": activity.agreement_ids, **detail})


def _audit(kind: str, summary: str, actor: User | None, activity: Activity, **detail) -> None:
    record_many([_entry(kind, summary, actor, activity, **detail)])


# --- operations ------------------------------------------------------------------------------------------------------


def log_activity(
    actor: User,
    *,
    agreements: Sequence[Agreement],
    category: str,
    title: str,
    held_on: date,
    organization_ids: Iterable[int],
    status=ActivityStatus.held,
    tags: Iterable[str] = (),
    start_time: time | None = None,
    end_time: time | None = None,
    place: str | None = None,
    party_member_count: int | None = 0,
    other_count: int | None = 0,
    summary: str | None = "",
    outcome: str | None = "",
    attachments: Sequence[CheckedUpload] = (),
    upload_root: Path | None = None,
) -> Activity:
    """Log a joint activity for the actor's party; every other participating party is asked to confirm."""
    attachments = list(attachments)
    activity = new_activity(
        actor, agreements=agreements, category=category, title=title, held_on=held_on,
        organization_ids=organization_ids, status=status, tags=tags, start_time=start_time, end_time=end_time,
        place=place, party_member_count=party_member_count, other_count=other_count, summary=summary,
        outcome=outcome, attachments=attachments, upload_root=upload_root,
    )
    db.session.flush()
    record_many([logged_entry(actor, activity, len(attachments))])
    return activity


def new_activity(actor: User, *, attachments: Sequence[CheckedUpload] = (), upload_root: Path | None = None,
                 **fields) -> Activity:
    """log_activity's first half: validate (raising ActivityRefused) and add the activity to the session, without
    flushing or auditing. An import adds all its rows so, flushes once, then records every `logged_entry`."""
    attachments = list(attachments)
    values = validate_activity(actor, photo_count=sum(1 for a in attachments if a.kind == "image"), **fields)
    _check_attachment_budget(None, attachments)
    activity = Activity(
        category=values["category"], title=values["title"], held_on=values["held_on"],
        start_time=values["start_time"], end_time=values["end_time"], place=values["place"],
        party_member_count=values["party_member_count"], other_count=values["other_count"],
        summary=values["summary"], outcome=values["outcome"], status=values["status"],
        confirmation=ConfirmationState.pending, organizer_org_id=values["organizer_org_id"], created_by_id=actor.id,
    )
    for agreement in values["agreements"]:
        activity.agreement_links.append(ActivityAgreement(agreement_id=agreement.id))
    _set_participants(activity, values["organization_ids"])
    _set_tags(activity, values["tags"])
    db.session.add(activity)
    _attach(actor, activity, attachments, upload_root)
    return activity


def logged_entry(actor: User, activity: Activity, attachments: int = 0) -> Entry:
    """The audit entry of a newly logged (flushed) activity."""
    return _entry(
        "activity.logged",
        f"登记{activity.status.label}活动“{activity.title}”（{cn_date(activity.held_on)}）",
        actor, activity, status=activity.status.value, category=activity.category,
        organization_ids=activity.participant_org_ids, attachments=attachments,
    )


def edit_activity(actor: User, activity: Activity, *, note: str | None = None, **changes) -> ActivityRevision | None:
    """Change an activity's fields (organizer's liaisons); keeps a revision, may reset confirmations.

    `changes` takes any of EDITABLE_FIELDS. Returns the revision, or None when nothing changed.
    """
    if activity.status is ActivityStatus.withdrawn:
        raise ActivityRefused(_("已撤回的活动不能修改。"))
    if not can_edit_activity(actor, activity):
        raise ActivityRefused(_("只有发起方的联络员可以修改这条活动记录。"))
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    merged = {f: _current(activity, f) for f in EDITABLE_FIELDS}
    merged.update(changes)
    values = validate_activity(
        actor, agreements=[l.agreement for l in activity.agreement_links], status=activity.status,
        organizer_org_id=activity.organizer_org_id,
        photo_count=sum(1 for a in activity.attachments if a.kind == "image"), **merged,
    )
    diff = {}
    for field in EDITABLE_FIELDS:
        old, new = _current(activity, field), values[field]
        if not _same(field, old, new):
            diff[field] = (old, new)
    if not diff:
        return None
    for field, (_old, new) in diff.items():
        if field == "organization_ids":
            _set_participants(activity, new)
        elif field == "tags":
            _set_tags(activity, new)
        else:
            setattr(activity, field, new)
    changes_shown = {field: [_display(field, old), _display(field, new)] for field, (old, new) in diff.items()}
    notes = [note] if note else []
    if set(diff) - NON_SUBSTANTIVE_FIELDS:
        before = activity.confirmation
        if _reset_confirmations(activity):
            notes.append(NOTE_RESET)
        refresh_confirmation(activity)
        if before is not activity.confirmation:
            changes_shown["confirmation"] = [before.label, activity.confirmation.label]
    revision = ActivityRevision(changed_by_id=actor.id, changed_at=now_utc(), changes=changes_shown,
                                note="；".join(notes)[:300] or None)
    activity.revisions.append(revision)
    db.session.flush()
    _audit("activity.edited", f"修改活动“{activity.title}”：{'、'.join(FIELD_LABELS[f] for f in diff)}",
           actor, activity, changes=changes_shown)
    return revision


def mark_held(
    actor: User,
    activity: Activity,
    *,
    held_on: date | None = None,
    start_time: time | None = None,
    end_time: time | None = None,
    place: str | None = None,
    party_member_count: int | None = None,
    other_count: int | None = None,
    summary: str | None = None,
    outcome: str | None = None,
    organization_ids: Iterable[int] | None = None,
    attachments: Sequence[CheckedUpload] = (),
    upload_root: Path | None = None,
) -> Activity:
    """A planned activity took place: record the actual date, counts and results; partners are asked to confirm."""
    if activity.status is not ActivityStatus.planned:
        raise ActivityRefused(_("只有“计划中”的活动可以登记为已开展。"))
    if not can_edit_activity(actor, activity):
        raise ActivityRefused(_("只有发起方的联络员可以登记活动开展情况。"))
    if held_on is not None and held_on > local_today():
        # validate_activity's message would point to "计划中", which this form does not offer.
        raise ActivityRefused(_("实际日期不能晚于今天；活动还没有举行的话，请在开展后再来登记。"), "held_on")
    attachments = list(attachments)
    given = {
        "held_on": held_on, "start_time": start_time, "end_time": end_time, "place": place,
        "party_member_count": party_member_count, "other_count": other_count, "summary": summary,
        "outcome": outcome, "organization_ids": organization_ids,
    }
    merged = {f: _current(activity, f) for f in EDITABLE_FIELDS}
    merged.update({k: v for k, v in given.items() if v is not None})
    values = validate_activity(
        actor, agreements=[l.agreement for l in activity.agreement_links], status=ActivityStatus.held,
        organizer_org_id=activity.organizer_org_id,
        photo_count=sum(1 for a in activity.attachments if a.kind == "image") + sum(1 for a in attachments if a.kind == "image"),
        **merged,
    )
    _check_attachment_budget(activity, attachments)
    diff = {"status": (activity.status, ActivityStatus.held)}
    for field in EDITABLE_FIELDS:
        old, new = _current(activity, field), values[field]
        if not _same(field, old, new):
            diff[field] = (old, new)
    for field, (_old, new) in diff.items():
        if field == "organization_ids":
            _set_participants(activity, new)
        elif field == "tags":
            _set_tags(activity, new)
        else:
            setattr(activity, field, new)
    _reset_confirmations(activity)  # a plan's answers (if any) were not about what happened
    refresh_confirmation(activity)
    added = _attach(actor, activity, attachments, upload_root)
    changes_shown = {field: [_display(field, old), _display(field, new)] for field, (old, new) in diff.items()}
    if added:
        changes_shown["attachments"] = [None, [a.original_name for a in added]]
    activity.revisions.append(ActivityRevision(changed_by_id=actor.id, changed_at=now_utc(), changes=changes_shown,
                                               note=NOTE_HELD))
    db.session.flush()
    _audit("activity.held", f"计划活动“{activity.title}”已开展（{cn_date(activity.held_on)}）", actor, activity,
           changes=changes_shown)
    return activity


def confirm_activity(actor: User, activity: Activity, decision: str = "confirm", comment: str | None = None,
                     organization_id: int | None = None) -> ActivityConfirmation:
    """A partner's liaison confirms ('confirm') or disputes ('dispute', comment required) a held activity.

    `organization_id` picks the partner when the user is liaison for more than one; an answer may be
    changed later (e.g. a dispute settled by phone becomes a confirmation).
    """
    if decision not in ("confirm", "dispute"):
        raise ValueError(f"unknown decision {decision!r}")
    if activity.status is ActivityStatus.withdrawn:
        raise ActivityRefused(_("这条活动已被撤回，无需确认。"))
    if activity.status is not ActivityStatus.held:
        raise ActivityRefused(_("活动尚未开展，开展并登记后再确认。"))
    orgs = confirming_org_ids(actor, activity)
    if organization_id is not None:
        orgs &= {organization_id}
    if not orgs:
        raise ActivityRefused(_("只有参加活动的协议伙伴的联络员可以确认或提出异议。"))
    comment = (comment or "").strip()
    if decision == "dispute" and not comment:
        raise ActivityRefused(_("提出异议时请写明原因，方便对方核实修改。"), "comment")
    if len(comment) > 1000:
        raise ActivityRefused(_("说明不能超过 1000 个字。"), "comment")
    org_id = actor.organization_id if actor.organization_id in orgs else min(orgs)
    conf = next(c for c in activity.confirmations if c.organization_id == org_id)
    conf.state = ConfirmationState.confirmed if decision == "confirm" else ConfirmationState.disputed
    conf.decided_by_id = actor.id
    conf.decided_at = now_utc()
    conf.comment = comment or None
    refresh_confirmation(activity)
    db.session.flush()
    org_name = _org_names([org_id])[0]
    if decision == "confirm":
        _audit("activity.confirmed", f"{org_name}确认了活动“{activity.title}”", actor, activity, organization=org_id)
    else:
        _audit("activity.disputed", f"{org_name}对活动“{activity.title}”提出异议：{comment[:100]}", actor, activity,
               organization=org_id, comment=comment)
    return conf


def withdraw_activity(actor: User, activity: Activity, reason: str) -> Activity:
    """Withdraw an activity with a reason (organizer's liaisons). It stays visible and stops counting."""
    if activity.status is ActivityStatus.withdrawn:
        raise ActivityRefused(_("这条活动已经撤回。"))
    if not can_withdraw_activity(actor, activity):
        raise ActivityRefused(_("只有发起方的联络员可以撤回这条活动记录。"))
    reason = (reason or "").strip()
    if not reason:
        raise ActivityRefused(_("请写明撤回原因，伙伴和党委都会看到。"), "reason")
    if len(reason) > 1000:
        raise ActivityRefused(_("撤回原因不能超过 1000 个字。"), "reason")
    old = activity.status
    activity.status = ActivityStatus.withdrawn
    activity.withdrawn_at = now_utc()
    activity.withdrawn_by_id = actor.id
    activity.withdrawn_reason = reason
    activity.revisions.append(ActivityRevision(
        changed_by_id=actor.id, changed_at=now_utc(),
        changes={"status": [old.label, ActivityStatus.withdrawn.label], "withdrawn_reason": [None, reason]},
        note=NOTE_WITHDRAWN,
    ))
    db.session.flush()
    _audit("activity.withdrawn", f"撤回活动“{activity.title}”：{reason[:100]}", actor, activity, reason=reason)
    return activity


def add_attachments(actor: User, activity: Activity, uploads: Sequence[CheckedUpload], *,
                    upload_root: Path | None = None) -> list[Attachment]:
    """Attach checked uploads (organizer's liaisons) within the per-file and per-activity limits."""
    if not can_edit_activity(actor, activity):
        raise ActivityRefused(_("只有发起方的联络员可以为这条活动添加附件。"))
    uploads = list(uploads)
    if not uploads:
        raise ActivityRefused(_("请选择要上传的文件。"), "photos")
    _check_attachment_budget(activity, uploads)
    before = [a.original_name for a in activity.attachments]
    added = _attach(actor, activity, uploads, upload_root)
    activity.revisions.append(ActivityRevision(
        changed_by_id=actor.id, changed_at=now_utc(),
        changes={"attachments": [before, before + [a.original_name for a in added]]}, note=NOTE_ATTACHED,
    ))
    db.session.flush()
    _audit("activity.attachment_added", f"为活动“{activity.title}”添加 {len(added)} 个附件", actor, activity,
           attachment_ids=[a.id for a in added])
    return added


def remove_attachment(actor: User, attachment: Attachment, *, upload_root: Path | None = None) -> None:
    """Remove an attachment (organizer's liaisons); its files are deleted once the removal is committed."""
    activity = attachment.activity
    if not can_edit_activity(actor, activity):
        raise ActivityRefused(_("只有发起方的联络员可以删除这条活动的附件。"))
    setting = category_setting(activity.category)
    images_left = sum(1 for a in activity.attachments if a.kind == "image" and a.id != attachment.id)
    if activity.status is ActivityStatus.held and setting.requires_photo and attachment.kind == "image" and images_left == 0:
        raise ActivityRefused(_("“%(category)s”类活动须保留至少一张照片；请先上传新照片再删除。",
                                category=CATEGORY_BY_CODE[activity.category].label))
    root = upload_root or attachments_root()
    before = [a.original_name for a in activity.attachments]
    doomed = db.session.info.setdefault(_DOOMED_FILES, [])
    doomed.append((root, attachment.stored_path))
    if attachment.thumb_path:
        doomed.append((root, attachment.thumb_path))
    name, att_id = attachment.original_name, attachment.id
    activity.attachments.remove(attachment)
    activity.revisions.append(ActivityRevision(
        changed_by_id=actor.id, changed_at=now_utc(),
        changes={"attachments": [before, [a.original_name for a in activity.attachments]]}, note=NOTE_DETACHED,
    ))
    db.session.flush()
    _audit("activity.attachment_removed", f"删除活动“{activity.title}”的附件“{name}”", actor, activity,
           attachment_id=att_id)

