"""The whole-group cockpit stays fast: 600 pairings, 60,000 activities (run with --run-slow)."""
import random
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from agreements.models import Agreement, AgreementCommitment, AgreementParty
from coop.activities.models import Activity, ActivityAgreement, ActivityConfirmation, ActivityOrganization
from coop.categories import CATEGORY_CODES
from coop.extensions import db
from coop.orgs.models import Organization
from coop.reports import progress as pg
from coop.review.queries import build_cockpit, make_period, pairings_in_scope

AGREEMENTS = 600
ACTIVITIES_PER_AGREEMENT = 100


def _insert(table, rows):
    if rows:
        db.session.execute(sa.insert(table), rows)


def build_group(make_org, make_user):
    """Bulk rows: a group committee, 30 companies × 20 branches, 100 outside partners, 600 pairings."""
    rng = random.Random(2026)
    group = make_org("集团党委", kind="committee", relation="group")
    author = make_user("liaison", org=group)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    org_table = Organization.__table__
    next_id = db.session.execute(sa.select(sa.func.max(Organization.id))).scalar_one() + 1
    orgs, branches, partners = [], [], []
    for c in range(30):
        cid = next_id
        next_id += 1
        orgs.append(dict(id=cid, name=f"公司{c}党委", kind="committee", relation="group", parent_id=group.id,
                         path=f"{group.path}{cid}/", is_active=True, created_at=now, updated_at=now))
        for b in range(20):
            orgs.append(dict(id=next_id, name=f"公司{c}支部{b}", kind="branch", relation="company", parent_id=cid,
                             path=f"{group.path}{cid}/{next_id}/", is_active=True, created_at=now, updated_at=now))
            branches.append(next_id)
            next_id += 1
    for p in range(100):
        orgs.append(dict(id=next_id, name=f"外部单位{p}", kind="branch", relation=["government", "school", "industry"][p % 3],
                         parent_id=None, path=f"/{next_id}/", is_active=True, created_at=now, updated_at=now))
        partners.append(next_id)
        next_id += 1
    _insert(org_table, orgs)

    agreements, parties, commitments = [], [], []
    links, activities, participants, confirmations = [], [], [], []
    act_id = 1
    for i in range(AGREEMENTS):
        aid = i + 1
        start = date(2026, 1, 1) if i % 4 else date(2026, 4, 1)
        agreements.append(dict(id=aid, title=f"结对共建协议{i}", purpose="", status="active", starts_on=start,
                               ends_on=start.replace(year=start.year + 1) - timedelta(days=1), clauses=[],
                               signing_order_fixed=False, created_at=now, updated_at=now))
        members = [branches[i % len(branches)], partners[i % len(partners)]]
        if i % 10 == 0:
            members.append(branches[(i * 7 + 3) % len(branches)])
        members = list(dict.fromkeys(members))
        for pos, org_id in enumerate(members):
            parties.append(dict(agreement_id=aid, organization_id=org_id, position=pos))
        for code in rng.sample(CATEGORY_CODES, 3):
            commitments.append(dict(agreement_id=aid, category=code, count_per_year=rng.choice([2, 4, 6])))
        for _ in range(ACTIVITIES_PER_AGREEMENT):
            held_on = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 330))
            organizer = rng.choice(members)
            state = rng.choice(["confirmed", "confirmed", "confirmed", "pending", "disputed"])
            activities.append(dict(id=act_id, category=rng.choice(CATEGORY_CODES), title="活动", held_on=held_on,
                                   party_member_count=10, other_count=0, summary="", outcome="",
                                   status=rng.choice(["held"] * 9 + ["withdrawn"]), confirmation=state,
                                   organizer_org_id=organizer, created_by_id=author.id, created_at=now,
                                   updated_at=now))
            links.append(dict(activity_id=act_id, agreement_id=aid))
            for org_id in members:
                participants.append(dict(activity_id=act_id, organization_id=org_id))
                if org_id != organizer:
                    confirmations.append(dict(activity_id=act_id, organization_id=org_id, state=state,
                                              requested_at=now))
            act_id += 1
    for table, rows in ((Agreement.__table__, agreements), (AgreementParty.__table__, parties),
                        (AgreementCommitment.__table__, commitments), (Activity.__table__, activities),
                        (ActivityAgreement.__table__, links), (ActivityOrganization.__table__, participants),
                        (ActivityConfirmation.__table__, confirmations)):
        for start in range(0, len(rows), 5000):
            _insert(table, rows[start:start + 5000])
    db.session.commit()
    db.session.execute(sa.text("ANALYZE"))  # both databases: plans as in production, not on empty statistics
    db.session.commit()
    return group


def best_of(n, fn, expire=True):
    times = []
    for _ in range(n):
        if expire:  # a fresh request: nothing cached in the session
            db.session.expire_all()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


@pytest.mark.slow
def test_whole_group_cockpit_under_150_ms(make_org, make_user, login, client):
    group = build_group(make_org, make_user)
    today = date(2026, 11, 30)
    for period in (make_period("month", 2026, 11, today), make_period("year", 2026, 0, today)):
        # Where the time goes, so a regression points at its stage.
        load, agreements = best_of(3, lambda: pairings_in_scope(period, group))
        progress, _ = best_of(3, lambda: pg.agreement_progress(agreements, period.first, period.last), expire=False)
        signals, _ = best_of(3, lambda: pg.pairing_signals(agreements, period.last), expire=False)
        elapsed, cockpit = best_of(3, lambda: build_cockpit(group, period))
        print(f"\n{period.key}: {len(cockpit.rows)} pairings, {elapsed * 1000:.0f} ms "
              f"(load {load * 1000:.0f}, progress {progress * 1000:.0f}, signals {signals * 1000:.0f})")
        assert len(cockpit.rows) == AGREEMENTS
        assert elapsed < 0.150, f"{period.key}: {elapsed * 1000:.0f} ms"
    reviewer = make_user("committee", org=group)
    login(client, reviewer)
    elapsed, resp = best_of(3, lambda: client.get("/review/?period=2026-11"))
    print(f"page: {elapsed * 1000:.0f} ms, {len(resp.data) // 1024} KiB")
    assert resp.status_code == 200
