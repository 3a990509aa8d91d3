"""Writing and checking the audit log. Operations call record(); nothing else writes AuditEntry."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import sqlalchemy as sa
from flask import has_request_context, request

from coop.audit.models import AuditEntry
from coop.db import now_utc
from coop.extensions import db

GENESIS = "0" * 64
# Any constant works; it names "the audit chain" among PostgreSQL advisory locks.
_AUDIT_LOCK_KEY = 0x0A0D17


def _entry_digest(e: AuditEntry) -> str:
    payload = {
        "created_at": e.created_at.isoformat(),
        "actor_id": e.actor_id,
        "actor_name": e.actor_name,
        "kind": e.kind,
        "summary": e.summary,
        "detail": e.detail,
        "organization_id": e.organization_id,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "ip": e.ip,
        "prev_hash": e.prev_hash,
    }
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One entry for record_many: record()'s arguments."""
    kind: str
    summary: str
    actor: Any = None
    organization_id: Optional[int] = None
    target: Any = None
    detail: Optional[dict] = None


def record(
    kind: str,
    summary: str,
    *,
    actor=None,
    organization_id: Optional[int] = None,
    target: Any = None,
    detail: Optional[dict] = None,
) -> AuditEntry:
    """Append an entry to the audit log in the current transaction (flushes, never commits)."""
    return record_many([Entry(kind, summary, actor, organization_id, target, detail)])[0]


def record_many(entries: Sequence[Entry]) -> list[AuditEntry]:
    """Append entries to the audit log in this order, in the current transaction, with one read of the chain's
    tip and one flush (an import logs thousands of activities: one entry each). Flushes, never commits."""
    if not entries:
        return []
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        # Serialise chain appends: the lock is held until this transaction ends, so no two
        # writers can read the same previous hash.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
    prev = session.execute(
        sa.select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one_or_none() or GENESIS
    ip = request.remote_addr if has_request_context() else None
    rows = []
    for item in entries:
        entry = AuditEntry(
            created_at=now_utc(),
            actor_id=getattr(item.actor, "id", None),
            actor_name=getattr(item.actor, "display_name", None) or "系统",
            kind=item.kind,
            summary=item.summary[:300],
            detail=json.loads(json.dumps(item.detail or {}, ensure_ascii=False, default=str)),
            organization_id=item.organization_id,
            target_type=type(item.target).__name__ if item.target is not None else None,
            target_id=getattr(item.target, "id", None),
            ip=ip,
            prev_hash=prev,
        )
        # created_at is stored without sub-second precision loss on both databases, so the digest
        # recomputed later sees the same value.
        entry.entry_hash = prev = _entry_digest(entry)
        session.add(entry)
        rows.append(entry)
    session.flush()
    # The chain is walked in id order: the ORM inserts one table's new rows in the order they were added, so
    # the ids ascend with the links. Checked, since a broken chain would be reported as tampering.
    if any(a.id >= b.id for a, b in zip(rows, rows[1:])):
        raise RuntimeError("audit entries were not inserted in chain order")
    return rows


@dataclass
class ChainCheck:
    checked: int
    first_broken_id: Optional[int]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def verify_chain(batch: int = 5000) -> ChainCheck:
    """Walk the audit log in id order and report the first entry whose hash or link does not match."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = db.session.execute(
            sa.select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
        ).scalars().all()
        if not rows:
            return ChainCheck(checked, None)
        for e in rows:
            if e.prev_hash != prev:
                return ChainCheck(checked, e.id, "与上一条记录的链接不符（记录被删除或插入）")
            if _entry_digest(e) != e.entry_hash:
                return ChainCheck(checked, e.id, "记录内容与其哈希不符（记录被修改）")
            prev = e.entry_hash
            checked += 1
            last_id = e.id
