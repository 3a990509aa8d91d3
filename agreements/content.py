"""An agreement's text as one value: what a draft holds, what a version freezes, what the PDF shows.

A draft keeps its content in the Agreement rows (parties, commitments, liaisons); an amendment keeps
its proposed content in its AgreementVersion.content JSON until it is fully signed, so the rows that
activities and reports count against never change before every party has signed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from flask_babel import gettext as _

from agreements.models import (
    Agreement,
    AgreementCommitment,
    AgreementError,
    AgreementLiaison,
    AgreementParty,
)
from coop.auth.models import Role, User, UserRole
from coop.categories import CATEGORIES, CATEGORY_BY_CODE
from coop.extensions import db
from coop.orgs.models import Organization

MAX_PARTIES = 10
MAX_CLAUSES = 30
MAX_COUNT_PER_YEAR = 366


class AgreementInvalid(AgreementError):
    """The agreement's content breaks a rule (too few parties, bad term…)."""


@dataclass
class AgreementContent:
    """Everything a person edits on an agreement, independent of where it is stored."""

    title: str
    starts_on: date
    ends_on: date
    party_ids: list[int]
    purpose: str = ""
    number: str | None = None
    # 八联 code -> (count per year, text); only categories with a count or a text are kept.
    commitments: dict[str, tuple[int, str]] = field(default_factory=dict)
    liaisons: dict[int, list[int]] = field(default_factory=dict)  # party org id -> user ids
    clauses: list[str] = field(default_factory=list)
    signing_order_fixed: bool = False

    def copy(self) -> "AgreementContent":
        """A deep copy (lists and dicts are not shared)."""
        return AgreementContent(
            title=self.title, starts_on=self.starts_on, ends_on=self.ends_on, party_ids=list(self.party_ids),
            purpose=self.purpose, number=self.number, commitments=dict(self.commitments),
            liaisons={k: list(v) for k, v in self.liaisons.items()}, clauses=list(self.clauses),
            signing_order_fixed=self.signing_order_fixed,
        )


def content_of(agreement: Agreement) -> AgreementContent:
    """The content held in an agreement's rows (a draft's text, or the effective text)."""
    liaisons: dict[int, list[int]] = {}
    for l in sorted(agreement.liaisons, key=lambda l: l.id or 0):
        liaisons.setdefault(l.organization_id, []).append(l.user_id)
    return AgreementContent(
        title=agreement.title,
        starts_on=agreement.starts_on,
        ends_on=agreement.ends_on,
        party_ids=[p.organization_id for p in agreement.parties],
        purpose=agreement.purpose or "",
        number=agreement.number,
        commitments={c.category: (c.count_per_year, c.text or "") for c in agreement.commitments},
        liaisons=liaisons,
        clauses=list(agreement.clauses or []),
        signing_order_fixed=bool(agreement.signing_order_fixed),
    )


def content_from_json(data: dict) -> AgreementContent:
    """Read back the content stored in AgreementVersion.content (see snapshot())."""
    return AgreementContent(
        title=data["title"],
        starts_on=date.fromisoformat(data["starts_on"]),
        ends_on=date.fromisoformat(data["ends_on"]),
        party_ids=[p["organization_id"] for p in data["parties"]],
        purpose=data.get("purpose") or "",
        number=data.get("number") or None,
        commitments={c["category"]: (int(c["count_per_year"]), c.get("text") or "") for c in data.get("commitments", [])},
        liaisons={p["organization_id"]: [l["user_id"] for l in p.get("liaisons", [])] for p in data["parties"]},
        clauses=list(data.get("clauses") or []),
        signing_order_fixed=bool(data.get("signing_order_fixed")),
    )


def party_secretaries(org_id: int) -> list[User]:
    """Active users holding the secretary role in an organization (the ones who may sign for it)."""
    return list(db.session.execute(
        sa.select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.organization_id == org_id, UserRole.role == Role.secretary, User.is_active_account.is_(True))
        .order_by(User.id)
    ).scalars())


def default_liaisons(org_id: int) -> list[int]:
    """Users holding the liaison role in an organization: proposed as liaisons so nobody types them."""
    return list(db.session.execute(
        sa.select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.organization_id == org_id, UserRole.role == Role.liaison, User.is_active_account.is_(True))
        .order_by(User.id)
    ).scalars())


def validate_content(content: AgreementContent) -> None:
    """Refuse content that cannot make a valid agreement (raises AgreementInvalid, in the interface language)."""
    if not (content.title or "").strip():
        raise AgreementInvalid(_("请填写协议名称。"))
    if len(content.title) > 200:
        raise AgreementInvalid(_("协议名称最长 200 个字符。"))
    if content.number and len(content.number) > 60:
        raise AgreementInvalid(_("协议编号最长 60 个字符。"))
    ids = content.party_ids
    if len(set(ids)) != len(ids):
        raise AgreementInvalid(_("同一个组织不能重复作为共建方。"))
    if len(ids) < 2:
        raise AgreementInvalid(_("共建协议至少需要两个共建方。"))
    if len(ids) > MAX_PARTIES:
        raise AgreementInvalid(_("共建方最多 %(n)s 个。", n=MAX_PARTIES))
    orgs = {o.id: o for o in db.session.execute(sa.select(Organization).where(Organization.id.in_(ids))).scalars()}
    for org_id in ids:
        org = orgs.get(org_id)
        if org is None:
            raise AgreementInvalid(_("所选共建方不存在。"))
        if not org.is_active:
            raise AgreementInvalid(_("“%(org)s”已停用，不能作为共建方。", org=org.name))
    if content.ends_on < content.starts_on:
        raise AgreementInvalid(_("协议结束日期不能早于开始日期。"))
    if (content.ends_on - content.starts_on).days > 366 * 5:
        raise AgreementInvalid(_("协议期限最长五年。"))
    if not any(count > 0 for count, _text in content.commitments.values()):
        raise AgreementInvalid(_("请至少在一个“八联”类别中填写年度共建次数。"))
    for code, (count, text) in content.commitments.items():
        if code not in CATEGORY_BY_CODE:
            raise AgreementInvalid(_("未知的共建类别。"))
        if not 0 <= count <= MAX_COUNT_PER_YEAR:
            raise AgreementInvalid(_("“%(category)s”的年度次数应在 0 到 %(max)s 之间。",
                                     category=CATEGORY_BY_CODE[code].label, max=MAX_COUNT_PER_YEAR))
        if text and len(text) > 500:
            raise AgreementInvalid(_("“%(category)s”的内容说明最长 500 个字符。", category=CATEGORY_BY_CODE[code].label))
    if len(content.clauses) > MAX_CLAUSES:
        raise AgreementInvalid(_("其他条款最多 %(n)s 条。", n=MAX_CLAUSES))
    for org_id, user_ids in content.liaisons.items():
        if org_id not in ids:
            raise AgreementInvalid(_("联络员只能从共建方中指定。"))
        if not user_ids:
            continue
        users = db.session.execute(sa.select(User).where(User.id.in_(user_ids))).scalars().all()
        if len(users) != len(set(user_ids)):
            raise AgreementInvalid(_("所选联络员不存在。"))
        for u in users:
            if u.organization_id != org_id:
                raise AgreementInvalid(_("%(name)s 不属于“%(org)s”，不能担任该方联络员。", name=u.display_name,
                                         org=orgs[org_id].name))
            if not u.is_active:
                raise AgreementInvalid(_("%(name)s 的账号已停用，不能担任联络员。", name=u.display_name))


def apply_content(agreement: Agreement, content: AgreementContent) -> None:
    """Write content into the agreement's rows, keeping rows that did not change (no flush)."""
    agreement.title = content.title.strip()
    agreement.number = (content.number or "").strip() or None
    agreement.purpose = content.purpose or ""
    agreement.starts_on, agreement.ends_on = content.starts_on, content.ends_on
    agreement.clauses = [c for c in content.clauses if c.strip()]
    agreement.signing_order_fixed = content.signing_order_fixed

    # Update in place rather than delete-and-insert: the unit of work inserts before it deletes,
    # which would trip the (agreement, organization) unique constraints.
    by_org = {p.organization_id: p for p in agreement.parties}
    for p in list(agreement.parties):
        if p.organization_id not in content.party_ids:
            agreement.parties.remove(p)
    for position, org_id in enumerate(content.party_ids):
        party = by_org.get(org_id)
        if party is None:
            party = AgreementParty(organization_id=org_id)
            agreement.parties.append(party)
        party.position = position
    agreement.parties.sort(key=lambda p: p.position)

    by_code = {c.category: c for c in agreement.commitments}
    wanted = {code: v for code, v in content.commitments.items() if v[0] > 0 or v[1]}
    for c in list(agreement.commitments):
        if c.category not in wanted:
            agreement.commitments.remove(c)
    for code, (count, text) in wanted.items():
        row = by_code.get(code)
        if row is None:
            row = AgreementCommitment(category=code)
            agreement.commitments.append(row)
        row.count_per_year, row.text = count, (text or None)

    pairs = {(org_id, uid) for org_id, uids in content.liaisons.items() if org_id in content.party_ids for uid in uids}
    have = {(l.organization_id, l.user_id): l for l in agreement.liaisons}
    for key, row in have.items():
        if key not in pairs:
            agreement.liaisons.remove(row)
    for org_id, uid in sorted(pairs - set(have)):
        agreement.liaisons.append(AgreementLiaison(organization_id=org_id, user_id=uid))


def snapshot(content: AgreementContent) -> dict:
    """The content as JSON with names resolved: what a version freezes and the PDF is made from."""
    orgs = {o.id: o for o in db.session.execute(
        sa.select(Organization).where(Organization.id.in_(content.party_ids))).scalars()}
    user_ids = {u for uids in content.liaisons.values() for u in uids}
    users = {u.id: u for u in db.session.execute(sa.select(User).where(User.id.in_(user_ids))).scalars()} if user_ids else {}
    parties = []
    for org_id in content.party_ids:
        org = orgs[org_id]
        secretaries = party_secretaries(org_id)
        parties.append({
            "organization_id": org_id,
            "name": org.name,
            "kind_label": org.kind.label,
            # Printed under "书记（签字）" only when it is unambiguous; the visible signature names the signer anyway.
            "secretary_name": secretaries[0].display_name if len(secretaries) == 1 else "",
            "liaisons": [{"user_id": uid, "name": users[uid].display_name}
                         for uid in content.liaisons.get(org_id, []) if uid in users],
        })
    commitments = [
        {"category": c.code, "count_per_year": content.commitments[c.code][0], "text": content.commitments[c.code][1] or ""}
        for c in CATEGORIES
        if c.code in content.commitments and (content.commitments[c.code][0] > 0 or content.commitments[c.code][1])
    ]
    return {
        "title": content.title.strip(),
        "number": (content.number or "").strip(),
        "purpose": content.purpose or "",
        "starts_on": content.starts_on.isoformat(),
        "ends_on": content.ends_on.isoformat(),
        "signing_order_fixed": content.signing_order_fixed,
        "parties": parties,
        "commitments": commitments,
        "clauses": [c for c in content.clauses if c.strip()],
    }


def content_digest(data: dict) -> str:
    """SHA-256 of a snapshot in canonical JSON (sorted keys, no spaces)."""
    raw = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def describe_changes(old: AgreementContent, new: AgreementContent) -> dict:
    """Field-by-field differences, for the audit log's detail."""
    changed = {}
    for name in ("title", "number", "purpose", "starts_on", "ends_on", "party_ids", "clauses", "signing_order_fixed"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            changed[name] = [a, b]
    if old.commitments != new.commitments:
        changed["commitments"] = [
            {k: list(v) for k, v in old.commitments.items()}, {k: list(v) for k, v in new.commitments.items()}
        ]
    if old.liaisons != new.liaisons:
        changed["liaisons"] = [old.liaisons, new.liaisons]
    return changed
