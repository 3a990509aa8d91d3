"""The access matrix: every route of the app × every relation a person can have to the data (issue 9).

One constructed world — two committees, party A (under committee 1) paired with an external party B, an
unrelated organization U (under committee 2) — and nine actors:

    anon   not signed in                 admin  platform admin (no organization)
    la     liaison of A (named on it)    sa     secretary of A
    lb     liaison of B (by role)        lu/su  liaison / secretary of U (unrelated)
    ra     committee reviewer above A    rx     committee reviewer of committee 2 (another subtree)

`TABLE` below states, for each (endpoint, method), which actors must succeed (2xx/3xx, not a redirect to the
sign-in page), which may reach a form that refuses the request in place ("refused": nothing stored), and —
everyone else — who must be turned away: 403/404 when signed in, a redirect to /login (screens) or 401 (API)
when anonymous. A route of the app missing from the table fails the test by name.

The test runs in three phases:
1. every read (GET, and the read-only POST /verify) × every actor, with a leak check: no response to someone
   outside the agreements (anon, lu, su, rx) names party A or B, an agreement, the activity or its photo
   (org names are allowed only on the public organization directory pages listed in ORG_DIRECTORY), and LA's
   private notification reaches nobody else; GETs must not write to the database;
2. every state-changing request × every actor who may not make it, with the database fingerprinted before and
   after (every table, minus sign-in bookkeeping); actors who may make it send a harmless "probe" (an invalid
   form, a month not yet ended …) and must not be refused;
3. a handful of the authorized state changes for real, in an order that keeps later steps meaningful.

CSRF protection is ON here (the default test configuration switches it off): every POST carries the session's
real token, so refusals are the permission checks' doing, not CSRF's. The summary line is printed at the end
(see it with `-s` without xdist, or `-rP`).
"""
from __future__ import annotations

import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from coop.extensions import db
from tests.conftest import DEFAULT_PASSWORD
from tests.fixtures.activities import image_bytes, minimal_pdf
from tests.fixtures.api import issue_api_token

ANON, ADMIN, LA, SA, LB, LU, SU, RA, RX = "anon", "admin", "la", "sa", "lb", "lu", "su", "ra", "rx"
ACTORS = (ANON, ADMIN, LA, SA, LB, LU, SU, RA, RX)
SIGNED_IN = frozenset(ACTORS) - {ANON}
EVERYONE = frozenset(ACTORS)
AG_VIEW = frozenset({ADMIN, LA, SA, LB, RA})  # party members, the reviewer above a party, admins
REVIEWERS = frozenset({ADMIN, RA, RX})
A_AND_ABOVE = frozenset({ADMIN, LA, SA, RA})  # A's members, those overseeing A
A_MANAGERS = frozenset({ADMIN, RA})
DRAFTERS = frozenset({SA, RA})  # party secretary, reviewer above a party (admins do not write agreements)
# Nobody outside the agreements may learn about them.
OUTSIDERS = frozenset({ANON, LU, SU, RX})

NAME_A, NAME_B = "甲方测试支部XQ", "乙方测试支部XQ"
TITLES = {
    "ag": "甲乙共建协议XQ·生效", "draft": "甲乙共建协议XQ·草稿", "signing": "甲乙共建协议XQ·签署中",
    "amend": "甲乙共建协议XQ·修订中",
}
ACTIVITY_TITLE = "联学活动XQ专题党课"
PHOTO_NAME = "现场照片XQ.jpg"
LA_NOTICE = "甲方联络员私信XQ"
ORG_NAMES = frozenset({NAME_A, NAME_B})
PRIVATE = frozenset({*TITLES.values(), ACTIVITY_TITLE, PHOTO_NAME.rsplit(".", 1)[0]})
EVERYTHING = ORG_NAMES | PRIVATE
# The organization directory is public to every signed-in user (coop.auth.permissions.can_view_organization),
# and a drafter picks partners among all active organizations: these pages may name A and B.
ORG_DIRECTORY = {"orgs.index", "orgs.detail", "api.list_organizations", "api.get_organization", "agreements.new"}

CSRF_NAMES = ("csrf_token", "decline-csrf_token", "reset-csrf_token", "p-csrf_token", "pw-csrf_token",
              "n-csrf_token")
SKIP_TABLES = {"login_sessions", "login_throttles"}  # sign-in bookkeeping every request may touch
SKIP_COLUMNS = {("api_tokens", "last_used_at")}  # written at most once a minute by any API request


@dataclass
class Case:
    """One (endpoint, method) row of the matrix, for one URL."""

    endpoint: str
    method: str
    url: str
    ok: frozenset
    refused: frozenset = frozenset()  # reach the handler, refused in place (form error / 422), nothing stored
    mutates: bool = False  # changes state when the actor is allowed
    data: object = None  # form fields (screens) — values may hold {placeholders} or be callables
    json: object = None  # JSON body (API)
    probe: object = None  # harmless request for allowed actors of a mutating case (phase 2)
    probe_json: object = None
    ok_status: frozenset | None = None  # statuses that count as success (default: < 400, not to /login)
    final: int | None = None  # phase 3: made for real by `final_actors` (default: ok), in this order
    final_actors: frozenset | None = None
    fresh: bool = False  # phase 3 on a new client (sign-in / sign-out)
    leak_ok: frozenset = frozenset()  # tokens this page may show to outsiders (public by design)

    @property
    def api(self) -> bool:
        return self.url.startswith("/api/")



def C(endpoint, method, url, ok, **kw) -> Case:
    for name in ("refused", "ok_status", "final_actors", "leak_ok"):
        if kw.get(name) is not None:
            kw[name] = frozenset(kw[name])
    return Case(endpoint, method, url, frozenset(ok), **kw)


def _logo_upload():
    return {"logo": (io.BytesIO(image_bytes("PNG")), "logo.png")}


def _photo_upload():
    return {"files": (io.BytesIO(image_bytes()), "补充照片.jpg")}


def _ledger_upload():
    return {"file": (io.BytesIO(b"PK\x03\x04 not really a workbook"), "台账.xlsx")}


def _rule_fields():
    from coop.review.scoring import RULES

    return {**{f"points_{r.code}": "3" for r in RULES}, **{f"active_{r.code}": "y" for r in RULES}}


AGREEMENT_FORM = {
    "title": "越权起草的协议", "parties-0": "{a}", "parties-1": "{b}", "starts_on": "{today}", "ends_on": "{next_year}",
    "count_study": "4", "purpose": "共同推进",
}
ACTIVITY_FORM = {
    "agreement_ids": "{ag}", "status": "held", "category": "study", "title": "越权登记的活动", "held_on": "{recent}",
    "organization_ids": ["{a}", "{b}"], "party_member_count": "3", "other_count": "0",
}
ORG_FORM = {"name": "越权新建的支部", "kind": "branch", "relation": "company", "parent_id": "{c1}"}
API_ACTIVITY = {"agreement_id": "{ag}", "category": "study", "title": "接口登记的活动", "held_on": "{recent}",
                "organization_ids": ["{a}", "{b}"]}
BAD_LOGIN = {"username": "nobody-{me}", "password": "wrong"}  # one per actor: no sign-in lock-out
API_AGREEMENT = {"title": "接口起草的协议", "party_ids": ["{a}", "{b}"], "starts_on": "{today}", "ends_on": "{next_year}",
                 "commitments": {"study": 2}}

TABLE: list[Case] = [
    # --- home, static, sign-in -------------------------------------------------------------------------
    C("home.index", "GET", "/", SIGNED_IN),
    C("home.healthz", "GET", "/healthz", EVERYONE),
    C("static", "GET", "/static/css/app.css", EVERYONE),
    C("auth.login", "GET", "/login", EVERYONE),
    C("auth.login", "POST", "/login", EVERYONE, mutates=True,
      data={"username": "{lu_username}", "password": DEFAULT_PASSWORD}, final=90, fresh=True),
    C("auth.logout", "POST", "/logout", EVERYONE, mutates=True, final=99, fresh=True),
    C("auth.switch_language", "POST", "/lang", EVERYONE, mutates=True, data={"lang": "zh", "next": "/"}, final=80),
    C("auth.profile", "GET", "/profile", SIGNED_IN),
    C("auth.profile", "POST", "/profile", SIGNED_IN, mutates=True,
      data={"which": "profile", "p-display_name": "改名XQ", "p-locale": "zh"},
      probe={"which": "profile", "p-display_name": ""}),
    C("auth.users", "GET", "/admin/users", {ADMIN}),
    C("auth.user_new", "GET", "/admin/users/new", {ADMIN}),
    C("auth.user_new", "POST", "/admin/users/new", {ADMIN}, mutates=True,
      data={"username": "intruder", "display_name": "越权用户", "roles": "admin", "password": "Intrud3r!pass"},
      probe={"username": ""}),
    C("auth.user_edit", "GET", "/admin/users/{la_id}", {ADMIN}),
    C("auth.user_edit", "POST", "/admin/users/{la_id}", {ADMIN}, mutates=True,
      data={"username": "{la_username}", "display_name": "被改名", "roles": "admin", "organization_id": ""},
      probe={"display_name": ""}),
    C("auth.user_reset_password", "POST", "/admin/users/{la_id}/password", {ADMIN}, mutates=True,
      data={"reset-new_password": "Hijack3d!pass"}, probe={"reset-new_password": ""}),
    C("api_tokens.revoke", "POST", "/profile/api-tokens/{la_token_id}/revoke", {LA}, mutates=True, final=70),

    # --- organizations ---------------------------------------------------------------------------------
    C("orgs.index", "GET", "/orgs/", SIGNED_IN),
    C("orgs.detail", "GET", "/orgs/{a}", SIGNED_IN),
    C("orgs.logo", "GET", "/orgs/{a}/logo", SIGNED_IN),
    C("orgs.new", "GET", "/orgs/new", REVIEWERS),
    C("orgs.new", "POST", "/orgs/new", A_MANAGERS, refused={RX}, mutates=True, data=ORG_FORM, probe={"name": ""}),
    C("orgs.edit", "GET", "/orgs/{a}/edit", A_MANAGERS),
    C("orgs.edit", "POST", "/orgs/{a}/edit", A_MANAGERS, mutates=True,
      data={**ORG_FORM, "name": "被改名的支部"}, probe={"name": ""}),
    C("orgs.set_active", "POST", "/orgs/{a}/active", A_MANAGERS, mutates=True, data={"active": "0"}),
    C("orgs.upload_logo", "POST", "/orgs/{a}/logo", A_MANAGERS, mutates=True, data=_logo_upload, probe={}),

    # --- audit -------------------------------------------------------------------------------------------
    C("audit.index", "GET", "/audit/", REVIEWERS),

    # --- agreements ----------------------------------------------------------------------------------------
    C("agreements.index", "GET", "/agreements/", SIGNED_IN),
    C("agreements.index", "GET", "/agreements/?party={a}&q=XQ", SIGNED_IN),  # filters never widen what one sees
    C("agreements.detail", "GET", "/agreements/{ag}", AG_VIEW),
    C("agreements.detail", "GET", "/agreements/{draft}", AG_VIEW),
    C("agreements.detail", "GET", "/agreements/{signing}", AG_VIEW),
    C("agreements.detail", "GET", "/agreements/{amend}", AG_VIEW),
    C("agreements.new", "GET", "/agreements/new", {SA, SU, RA, RX}),
    # SU and RX may draft, but not for A and B: the operation refuses in the form.
    C("agreements.new", "POST", "/agreements/new", DRAFTERS, refused={SU, RX}, mutates=True, data=AGREEMENT_FORM,
      probe={"title": ""}),
    C("agreements.edit", "GET", "/agreements/{draft}/edit", DRAFTERS),
    C("agreements.edit", "POST", "/agreements/{draft}/edit", DRAFTERS, mutates=True,
      data={**AGREEMENT_FORM, "title": "被改写的草稿"}, probe={"title": ""}),
    C("agreements.submit", "POST", "/agreements/{draft}/submit", DRAFTERS, mutates=True),
    C("agreements.recall", "POST", "/agreements/{signing}/recall", DRAFTERS, mutates=True, data={"note": "撤回"},
      final=40, final_actors={RA}),
    C("agreements.sign", "GET", "/agreements/{signing}/sign", {SA}),
    C("agreements.sign", "POST", "/agreements/{signing}/sign", {SA}, mutates=True,
      data={"password": DEFAULT_PASSWORD, "confirm": "y"}, probe={"password": ""}),
    C("agreements.decline", "POST", "/agreements/{signing}/decline", {SA}, mutates=True,
      data={"decline-reason": "不同意"}, probe={"decline-reason": ""}),
    C("agreements.terminate", "GET", "/agreements/{ag}/terminate", {SA}),
    C("agreements.terminate", "POST", "/agreements/{ag}/terminate", {SA}, mutates=True, data={"reason": "越权终止"},
      probe={"reason": ""}, final=49),
    C("agreements.renew", "POST", "/agreements/{ag}/renew", DRAFTERS, mutates=True, final=41, final_actors={SA}),
    C("agreements.amend", "POST", "/agreements/{ag}/amend", DRAFTERS, mutates=True, data={"note": "修订"},
      final=42, final_actors={RA}),
    C("agreements.amendment", "GET", "/agreements/{amend}/amendment", DRAFTERS),
    C("agreements.amendment", "POST", "/agreements/{amend}/amendment", DRAFTERS, mutates=True,
      data={**AGREEMENT_FORM, "title": "被改写的修订"}, probe={"title": ""}),
    C("agreements.amendment_submit", "POST", "/agreements/{amend}/amendment/submit", DRAFTERS, mutates=True),
    C("agreements.amendment_withdraw", "POST", "/agreements/{amend}/amendment/withdraw", DRAFTERS, mutates=True,
      data={"note": "撤回修订"}, final=43, final_actors={SA}),
    C("agreements.pdf", "GET", "/agreements/{ag}/pdf", AG_VIEW),
    C("agreements.preview", "GET", "/agreements/{draft}/preview.pdf", AG_VIEW),
    C("agreements.version_pdf", "GET", "/agreements/{ag}/versions/1/pdf", AG_VIEW),
    C("agreements.version_certificate", "GET", "/agreements/{ag}/versions/1/certificate", AG_VIEW),
    # Public verification: whoever holds the printed code sees the public summary (names and title, by design).
    C("agreements.verify", "GET", "/verify", EVERYONE),
    C("agreements.verify", "POST", "/verify", EVERYONE, ok_status={422}, data={}),  # read-only: "choose a file"
    C("agreements.verify_code", "GET", "/verify/{code}", EVERYONE, leak_ok=EVERYTHING),
    C("agreements.verify_root_certificate", "GET", "/verify/platform-root.pem", EVERYONE),

    # --- activities ----------------------------------------------------------------------------------------
    C("activities.ledger", "GET", "/activities/", SIGNED_IN),
    C("activities.ledger", "GET", "/activities/?agreement={ag}&partner={b}&q=XQ", SIGNED_IN),
    C("activities.committee", "GET", "/activities/committee", REVIEWERS),
    C("activities.pending", "GET", "/activities/pending", SIGNED_IN),
    C("activities.calendar_view", "GET", "/activities/calendar", SIGNED_IN),
    C("activities.calendar_view", "GET", "/activities/calendar?agreement_id={ag}&month={recent_month}", AG_VIEW),
    C("activities.calendar_view", "GET", "/activities/calendar?scope=committee", REVIEWERS),
    C("activities.by_agreement", "GET", "/activities/agreement/{ag}", AG_VIEW),
    C("activities.by_org", "GET", "/activities/org/{a}", A_AND_ABOVE),
    C("activities.by_org", "GET", "/activities/org/{b}", {ADMIN, LB}),  # B is outside committee 1
    C("activities.export", "GET", "/activities/export.csv", SIGNED_IN),
    C("activities.export", "GET", "/activities/export.xlsx?agreement_id={ag}", AG_VIEW),
    C("activities.export", "GET", "/activities/export.csv?org_id={a}", A_AND_ABOVE),
    C("activities.export", "GET", "/activities/export.csv?scope=committee", REVIEWERS),
    C("activities.export", "GET", "/activities/export.csv?scope=committee&agreement={ag}&partner={a}", REVIEWERS),
    C("activities.export", "GET", "/activities/export.csv?agreement={ag}&partner={b}", SIGNED_IN),
    C("activities.detail", "GET", "/activities/{act}", AG_VIEW),
    C("activities.attachment", "GET", "/activities/attachments/{att}", AG_VIEW),
    C("activities.thumbnail", "GET", "/activities/attachments/{att}/thumb", AG_VIEW),
    C("activities.new", "GET", "/activities/new", SIGNED_IN),
    # Everyone signed in may open the form; only the agreement's liaisons may log under it.
    C("activities.new", "POST", "/activities/new", {LA, LB}, refused=SIGNED_IN - {LA, LB}, mutates=True,
      data=ACTIVITY_FORM, probe={"title": ""}),
    C("activities.edit", "GET", "/activities/{act}/edit", {LA}),
    C("activities.edit", "POST", "/activities/{act}/edit", {LA}, mutates=True,
      data={**ACTIVITY_FORM, "title": "被改写的活动"}, probe={"title": ""}),
    C("activities.mark_held", "GET", "/activities/{act}/held", {LA}),  # already held: sent back to the page
    C("activities.mark_held", "POST", "/activities/{act}/held", {LA}, mutates=True,
      data={"held_on": "{recent}", "organization_ids": ["{a}", "{b}"]}, probe={}),
    C("activities.confirm", "POST", "/activities/{act}/confirm", {LB}, mutates=True, data={"decision": "confirm"},
      probe={"decision": ""}, final=10),
    C("activities.withdraw", "POST", "/activities/{act}/withdraw", {LA}, mutates=True, data={"reason": "重复录入"},
      probe={"reason": ""}, final=60),
    C("activities.add_attachments", "POST", "/activities/{act}/attachments", {LA}, mutates=True, data=_photo_upload,
      probe={}),
    C("activities.delete_attachment", "POST", "/activities/attachments/{att}/delete", {LA}, mutates=True, final=59),
    C("activities.import_file", "GET", "/activities/agreement/{ag}/import", {LA, LB}),
    C("activities.import_file", "POST", "/activities/agreement/{ag}/import", {LA, LB}, mutates=True,
      data=_ledger_upload, probe={}),
    # An import's page and progress: whoever made it, and whoever may see the agreement's ledger.
    C("activities.import_run", "GET", "/activities/imports/{import_run}", AG_VIEW),
    C("activities.import_run_progress", "GET", "/activities/imports/{import_run}/progress", AG_VIEW),

    # --- reminders -------------------------------------------------------------------------------------------
    C("reminders.index", "GET", "/notifications", SIGNED_IN),
    C("reminders.open_notification", "POST", "/notifications/{notif}/open", {LA}, mutates=True, final=21),
    C("reminders.mark_read", "POST", "/notifications/{notif}/read", {LA}, mutates=True, final=20),
    C("reminders.mark_all_read", "POST", "/notifications/read-all", SIGNED_IN, mutates=True, final=22),
    C("reminders.save_settings", "POST", "/notifications/settings", SIGNED_IN, mutates=True,
      data={"n-email_mode": "daily"}, final=23),
    C("reminders.create_feed", "POST", "/notifications/calendar", SIGNED_IN, mutates=True, final=24),
    C("reminders.revoke_feed", "POST", "/notifications/calendar/revoke", SIGNED_IN, mutates=True, final=25),
    # Capability URLs: the secret token is the permission (the feed shows its owner's activities, by design).
    C("reminders.calendar_feed", "GET", "/calendar/{feed}.ics", EVERYONE, leak_ok=EVERYTHING),
    C("reminders.calendar_feed", "GET", "/calendar/not-a-real-feed-token.ics", set()),
    C("reminders.unsubscribe", "GET", "/notifications/unsubscribe/{unsub}", EVERYONE),
    C("reminders.unsubscribe", "GET", "/notifications/unsubscribe/forged.token", set()),
    C("reminders.unsubscribe", "POST", "/notifications/unsubscribe/{unsub}", EVERYONE, mutates=True, final=26),

    # --- reports -----------------------------------------------------------------------------------------------
    C("reports.index", "GET", "/reports/", SIGNED_IN),
    C("reports.index", "GET", "/reports/?kind=organization&month={month}", SIGNED_IN),
    C("reports.download", "GET", "/reports/{report}/download", AG_VIEW),
    C("reports.download", "GET", "/reports/{report_b}/download", {ADMIN, LB}),
    C("reports.download", "GET", "/reports/{report_c1}/download", A_MANAGERS),
    C("reports.agreement_month", "GET", "/reports/agreements/{ag}/{month}", AG_VIEW),
    C("reports.organization_month", "GET", "/reports/organizations/{a}/{month}", A_AND_ABOVE),
    C("reports.organization_month", "GET", "/reports/organizations/{b}/{month}", {ADMIN, LB}),
    C("reports.committee_month", "GET", "/reports/committee/{month}?org={c1}", A_MANAGERS),
    C("reports.committee_month", "GET", "/reports/committee/{month}", {ADMIN}),  # the whole platform
    C("reports.generate", "POST", "/reports/generate", AG_VIEW, mutates=True,
      data={"kind": "agreement", "subject_id": "{ag}", "month": "{month}"},
      probe={"kind": "agreement", "subject_id": "{ag}", "month": "{this_month}"}),  # month not over: refused
    C("reports.start_run", "POST", "/reports/runs", {ADMIN}, mutates=True, data={"month": "{month}"},
      probe={"month": "not-a-month"}),
    C("reports.run", "GET", "/reports/runs/{run}", {ADMIN}),
    C("reports.run_progress", "GET", "/reports/runs/{run}/progress", {ADMIN}),

    # --- committee review ----------------------------------------------------------------------------------------
    C("review.cockpit", "GET", "/review/", REVIEWERS),
    C("review.cockpit", "GET", "/review/?org={a}", A_MANAGERS),  # a filter outside one's subtree: 404
    C("review.cell", "GET", "/review/cell?agreement_id={ag}&category=study", A_MANAGERS),
    C("review.export_cockpit", "GET", "/review/export/cockpit.xlsx", REVIEWERS),
    C("review.export_cockpit", "GET", "/review/export/cockpit.xlsx?org={a}", A_MANAGERS),
    C("review.export_scores", "GET", "/review/export/scores.xlsx", REVIEWERS),
    C("review.scores", "GET", "/review/scores", REVIEWERS),
    C("review.typical", "GET", "/review/typical", REVIEWERS),
    C("review.ranking", "GET", "/review/ranking", REVIEWERS),  # others: 404 until a committee publishes it
    C("review.evaluate", "GET", "/review/activities/{act}/evaluate", A_MANAGERS),
    C("review.evaluate", "POST", "/review/activities/{act}/evaluate", A_MANAGERS, mutates=True,
      data={"rating": "good", "comment": "越权评价"}, probe={"rating": ""}, final=30),
    C("review.partners", "GET", "/review/agreements/{ag}/partners", AG_VIEW),
    C("review.partners", "POST", "/review/agreements/{ag}/partners", AG_VIEW, mutates=True,
      data={"slot": "{partner_slot}", "{partner_slot}-score": "1", "{partner_slot}-csrf_token": "{csrf}"},
      probe={"slot": "no-such-slot"}),
    C("review.org_score", "GET", "/review/scores/{a}", A_AND_ABOVE),
    C("review.org_score", "GET", "/review/scores/{b}", {ADMIN, LB}),
    C("review.org_score", "POST", "/review/scores/{a}", A_MANAGERS, mutates=True,
      data={"points": "-50", "reason": "越权扣分", "applies_on": "{today}"}, probe={"reason": ""}),
    C("review.rules", "GET", "/review/rules", SIGNED_IN),
    C("review.rules", "POST", "/review/rules", REVIEWERS, mutates=True, data=_rule_fields, probe={}),
    C("review.settings", "GET", "/review/settings", REVIEWERS),
    C("review.settings", "POST", "/review/settings", REVIEWERS, mutates=True,
      data={"ranking_published": "y", "stalled_days": "30"}, probe={"stalled_days": "not-a-number"}),

    # --- JSON API (bearer tokens; no token: 401) ----------------------------------------------------------------------
    C("api.openapi_json", "GET", "/api/v1/openapi.json", EVERYONE),
    # Public by design (it is how a token is obtained): wrong credentials are 401 for everybody.
    C("api.create_token", "POST", "/api/v1/tokens", EVERYONE, mutates=True, ok_status={401},
      json=BAD_LOGIN, probe_json=BAD_LOGIN),
    C("api.revoke_current_token", "DELETE", "/api/v1/tokens/current", SIGNED_IN, mutates=True, final=69,
      final_actors=SIGNED_IN - {LA}),
    C("api.me", "GET", "/api/v1/me", SIGNED_IN),
    C("api.list_organizations", "GET", "/api/v1/organizations", SIGNED_IN),
    C("api.get_organization", "GET", "/api/v1/organizations/{a}", SIGNED_IN),
    C("api.create_organization", "POST", "/api/v1/organizations", A_MANAGERS, mutates=True,
      json={"name": "接口新建支部{me}", "kind": "branch", "relation": "company", "parent_id": "{c1}"}, final=32),
    C("api.update_organization", "PATCH", "/api/v1/organizations/{a}", A_MANAGERS, mutates=True,
      json={"region": "越权修改"}, probe_json={}),
    C("api.list_users", "GET", "/api/v1/users", {ADMIN}),
    C("api.create_user", "POST", "/api/v1/users", {ADMIN}, mutates=True,
      json={"username": "apiintruder", "password": "Intrud3r!pass", "display_name": "接口用户", "roles": ["admin"]},
      final=33),
    C("api.list_agreements", "GET", "/api/v1/agreements", SIGNED_IN),
    C("api.list_agreements", "GET", "/api/v1/agreements?party={a}", SIGNED_IN),
    C("api.get_agreement", "GET", "/api/v1/agreements/{ag}", AG_VIEW),
    C("api.agreement_pdf", "GET", "/api/v1/agreements/{ag}/pdf", AG_VIEW),
    C("api.create_agreement", "POST", "/api/v1/agreements", DRAFTERS, mutates=True, json=API_AGREEMENT, final=31,
      final_actors={SA}),
    C("api.submit_agreement", "POST", "/api/v1/agreements/{draft}/submit", DRAFTERS, mutates=True),
    C("api.sign_agreement", "POST", "/api/v1/agreements/{signing}/signatures", {SA}, mutates=True,
      json={"password": DEFAULT_PASSWORD}),
    C("api.list_activities", "GET", "/api/v1/activities", SIGNED_IN),
    C("api.list_activities", "GET", "/api/v1/activities?agreement_id={ag}", SIGNED_IN),  # filtered to what one may see
    C("api.list_activities", "GET", "/api/v1/activities?organization_id={a}", SIGNED_IN),
    C("api.get_activity", "GET", "/api/v1/activities/{act}", AG_VIEW),
    # Outsiders name an agreement they cannot see: 422 "does not exist or not visible" (nothing stored).
    C("api.create_activity", "POST", "/api/v1/activities", {LA, LB}, refused={LU, SU, RX}, mutates=True,
      json=API_ACTIVITY, final=34, final_actors={LA}),
    C("api.confirm_activity", "POST", "/api/v1/activities/{act}/confirmation", {LB}, mutates=True,
      json={"decision": "confirm"}, final=11),
    C("api.monthly_report", "GET", "/api/v1/reports/monthly?month={month}&agreement_id={ag}", AG_VIEW),
    C("api.monthly_report", "GET", "/api/v1/reports/monthly?month={month}&organization_id={a}", A_AND_ABOVE),
    C("api.monthly_report", "GET", "/api/v1/reports/monthly?month={month}&organization_id={b}", {ADMIN, LB}),
    C("api.monthly_report", "GET", "/api/v1/reports/monthly?month={month}", REVIEWERS),
    C("api.monthly_report_pdf", "GET", "/api/v1/reports/monthly.pdf?month={month}&agreement_id={ag}", AG_VIEW),
    C("api.monthly_report_pdf", "GET", "/api/v1/reports/monthly.pdf?month={month}&organization_id={a}", A_AND_ABOVE),
    C("api.list_notifications", "GET", "/api/v1/notifications", SIGNED_IN),
    C("api.read_notification", "POST", "/api/v1/notifications/{notif}/read", {LA}, mutates=True, final=12),
]


# --- the world ------------------------------------------------------------------------------------------------


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def _frozen_version(agreement, state: str, *, certificate: bool = False):
    """A frozen version row with a real archived file (rows as the signing operations leave them, without
    spending seconds on PDF rendering and RSA signatures: test_agreements_* do those for real)."""
    from agreements.content import content_of, snapshot
    from agreements.models import AgreementVersion, VersionKind, VersionState
    from agreements.signatures import archive_path, new_verify_code, sha256_hex
    from coop.db import now_utc

    def archived(name: str) -> tuple[str, str]:
        data = minimal_pdf() + f"% {agreement.id} {name}\n".encode()
        relative = f"agreements/{agreement.id}/{name}"
        path = archive_path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return relative, sha256_hex(data)

    pdf_path, digest = archived(f"v1-{state}.pdf")
    version = AgreementVersion(
        agreement_id=agreement.id, number=1, kind=VersionKind.original, state=VersionState(state),
        content=snapshot(content_of(agreement)), verify_code=new_verify_code(), pdf_path=pdf_path, pdf_sha256=digest,
        unsigned_sha256=digest, submitted_at=now_utc(),
    )
    if state == "signed":
        version.final_sha256 = digest
        version.completed_at = now_utc()
        if certificate:
            version.certificate_path, version.certificate_sha256 = archived("v1-certificate.pdf")
    db.session.add(version)
    db.session.commit()
    return version


@pytest.fixture
def world(app, make_org, make_user, make_agreement, make_activity, api_notification, fast_render, monkeypatch):
    from agreements import operations as agreement_ops
    from agreements.models import AgreementStatus
    from coop.activities.models import ImportRun, ImportStatus
    from coop.api.models import ApiToken
    from coop.formatting import local_today
    from coop.reminders.delivery import unsubscribe_token
    from coop.reminders.operations import create_calendar_feed
    from coop.reports import operations as report_ops
    from coop.reports import queries as report_queries
    from coop.reports.models import ReportKind, ReportRun, RunStatus
    from coop.uploads import inspect_upload, store_upload

    # PDF renderings are not what is tested here (test_agreements_pdf / test_reports_pdf render for real).
    monkeypatch.setattr("agreements.views.render_snapshot_pdf", lambda data, version_label: (minimal_pdf(), []))
    monkeypatch.setattr("coop.reports.pdf.render_report", lambda data, version, generated_at: SimpleNamespace(
        pdf=minimal_pdf(), html="", sha256="0" * 64, page_count=1))

    today = local_today()
    c1 = make_org("华东测试党委", kind="committee", relation="group")
    c2 = make_org("华西测试党委", kind="committee", relation="group")
    a = make_org(NAME_A, parent=c1)
    b = make_org(NAME_B, relation="government")
    u = make_org("无关测试支部", parent=c2)
    checked = inspect_upload(image_bytes("PNG"), "标识.png", max_bytes=2 * 1024 * 1024)
    a.brand_logo_path = store_upload(Path(app.config["UPLOAD_DIR"]), checked).relative_path
    db.session.commit()

    users = {
        ADMIN: make_user("admin", display_name="平台管理员"),
        LA: make_user("liaison", org=a, display_name="甲方联络员"),
        SA: make_user("secretary", org=a, display_name="甲方书记"),
        LB: make_user("liaison", org=b, display_name="乙方联络员"),
        LU: make_user("liaison", org=u, display_name="无关联络员"),
        SU: make_user("secretary", org=u, display_name="无关书记"),
        RA: make_user("committee", org=c1, display_name="上级审阅人"),
        RX: make_user("committee", org=c2, display_name="别处审阅人"),
    }
    term = dict(starts_on=today - timedelta(days=200), ends_on=today + timedelta(days=165))
    pair = dict(parties=[a, b], liaisons={a: [users[LA]]}, **term)
    ag = make_agreement(title=TITLES["ag"], status="active", **pair)
    draft = make_agreement(title=TITLES["draft"], status="draft", **pair)
    signing = make_agreement(title=TITLES["signing"], status="signing", **pair)
    amend = make_agreement(title=TITLES["amend"], status="active", **pair)
    v1 = _frozen_version(ag, "signed", certificate=True)
    _frozen_version(signing, "signing")
    _frozen_version(amend, "signed")
    agreement_ops.start_amendment(amend, actor=users[SA], note="调整次数")
    db.session.commit()
    assert ag.status is AgreementStatus.active and amend.pending_version is not None

    recent = today - timedelta(days=20)
    photo = inspect_upload(image_bytes(), PHOTO_NAME, max_bytes=app.config["UPLOAD_MAX_FILE_BYTES"])
    act = make_activity(users[LA], ag, title=ACTIVITY_TITLE, held_on=recent, attachments=[photo])
    att = act.attachments[0]
    assert att.thumb_path

    notices = {key: api_notification(user, title=LA_NOTICE if key == LA else f"通知{key}") for key, user in users.items()}
    y, m = report_queries.last_completed_month(today)
    report = report_ops.generate_report(ReportKind.agreement, ag.id, y, m, actor=users[ADMIN])
    report_b = report_ops.generate_report(ReportKind.organization, b.id, y, m, actor=users[ADMIN])
    report_c1 = report_ops.generate_report(ReportKind.committee, c1.id, y, m, actor=users[ADMIN])
    run = ReportRun(year=y, month=m, status=RunStatus.done, total=1, done=1, created=1, message="完成",
                    created_by_id=users[ADMIN].id, finished_at=report.created_at)
    db.session.add(run)
    import_run = ImportRun(agreement_id=ag.id, created_by_id=users[LA].id, file_name="台账.xlsx",
                           file_path="ab/cd/abcd0000.xlsx", status=ImportStatus.done, total=1, checked=1, written=1,
                           started_at=report.created_at, finished_at=report.created_at)
    db.session.add(import_run)
    feed = create_calendar_feed(users[LA])
    db.session.commit()

    tokens = {key: issue_api_token(user) for key, user in users.items()}
    la_token_id = db.session.execute(sa.select(ApiToken.id).where(ApiToken.user_id == users[LA].id)).scalar_one()
    quarter = (today.month - 1) // 3 + 1
    ids = {
        "a": a.id, "b": b.id, "c1": c1.id, "ag": ag.id, "draft": draft.id, "signing": signing.id, "amend": amend.id,
        "act": act.id, "att": att.id, "notif": notices[LA].id, "report": report.id, "report_b": report_b.id,
        "report_c1": report_c1.id, "run": run.id, "import_run": import_run.id,
        "la_id": users[LA].id, "la_username": users[LA].username, "lu_username": users[LU].username,
        "la_token_id": la_token_id, "feed": feed, "unsub": unsubscribe_token(users[LA].id, "*"),
        "code": v1.verify_code, "month": f"{y}-{m:02d}", "this_month": f"{today.year}-{today.month:02d}",
        "recent": recent.isoformat(), "recent_month": recent.strftime("%Y-%m"), "today": today.isoformat(),
        "next_year": (today + timedelta(days=365)).isoformat(),
        "partner_slot": f"q{today.year}{quarter}f{a.id}t{b.id}",
    }
    return SimpleNamespace(users=users, tokens=tokens, ids=ids, act=act, ag=ag, signing=signing, amend=amend)


# --- requests -------------------------------------------------------------------------------------------------


_CSRF_RE = re.compile(r'<input[^>]*name="[\w-]*csrf_token"[^>]*value="([^"]+)"|'
                      r'<input[^>]*value="([^"]+)"[^>]*name="[\w-]*csrf_token"')


class Actor:
    """One person's browser (cookie session + CSRF token) and API token."""

    def __init__(self, app, login, key: str, user, api_token: str | None):
        self.key, self.user, self.api_token = key, user, api_token
        self.client = app.test_client()
        if user is not None:
            login(self.client, user)
        page = self.client.get("/profile" if user is not None else "/login")
        match = _CSRF_RE.search(page.get_data(as_text=True))
        page.close()
        assert match, f"no CSRF token on the form page for {key}"
        self.csrf = match.group(1) or match.group(2)


_PLACEHOLDER = re.compile(r"^\{(\w+)\}$")


def _fill(value, ids: dict, *, typed: bool = False):
    """Fill {placeholders}; with `typed` (JSON bodies) a lone placeholder of an id stays an int."""
    if callable(value):
        value = value()
    if isinstance(value, str):
        lone = _PLACEHOLDER.match(value)
        if typed and lone and isinstance(ids.get(lone[1]), int):
            return ids[lone[1]]
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids, typed=typed) for v in value]
    if isinstance(value, dict):
        return {_fill(k, ids): _fill(v, ids, typed=typed) for k, v in value.items()}
    return value


def _send(actor: Actor, case: Case, ids: dict, *, data=None, json_body=None):
    url = case.url.format(**ids)
    headers = {}
    if case.api:
        if actor.api_token:
            headers["Authorization"] = f"Bearer {actor.api_token}"
        body = {} if json_body is None else {"json": _fill(json_body, {**ids, "me": actor.key}, typed=True)}
        return actor.client.open(url, method=case.method, headers=headers, **body)
    if case.method == "GET":
        return actor.client.open(url, method="GET", headers=headers)
    form = _fill(data, {**ids, "csrf": actor.csrf}) or {}
    form = {**{name: actor.csrf for name in CSRF_NAMES}, **form}
    return actor.client.open(url, method=case.method, headers=headers, data=form)


def _outcome(resp) -> int | str:
    if resp.status_code in (301, 302, 303, 307, 308) and "/login" in resp.headers.get("Location", "").split("?")[0]:
        return "login"
    return resp.status_code


def _succeeded(case: Case, outcome) -> bool:
    if case.ok_status is not None:
        return outcome in case.ok_status
    if case.endpoint == "auth.logout":  # signing out ends on the sign-in page, for everybody
        return outcome == "login"
    return isinstance(outcome, int) and outcome < 400


def _turned_away(case: Case, actor: str, outcome) -> bool:
    if actor == ANON:
        return outcome in (("login", 403, 404) if not case.api else (401, 404))
    return outcome in (403, 404)


def _body_text(resp) -> str | None:
    """The response as text for the leak check (JSON re-encoded without \\u escapes, xlsx unzipped)."""
    headers = " ".join(unquote(v) for _k, v in resp.headers.items())
    mimetype = resp.mimetype or ""
    data = resp.get_data()
    if mimetype == "application/json":
        try:
            return headers + json.dumps(json.loads(data), ensure_ascii=False)
        except ValueError:
            return headers + data.decode("utf-8", "replace")
    if mimetype.endswith("spreadsheetml.sheet"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return headers + "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
    if mimetype.startswith(("text/", "application/x-pem")) or mimetype in ("application/xml",):
        return headers + data.decode("utf-8", "replace")
    return None  # PDFs and images: binary, not inspected (headers still are)


def _fingerprint() -> dict:
    """Every row of every table (minus sign-in bookkeeping), to prove a refused request changed nothing."""
    tables = [t for t in db.metadata.sorted_tables if t.name not in SKIP_TABLES]
    stmts = [sa.select(*[c for c in t.columns if (t.name, c.name) not in SKIP_COLUMNS]).order_by(*t.primary_key.columns)
             for t in tables]
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        # One round trip for all tables: psycopg returns one result set per statement.
        sql = ";\n".join(str(stmt.compile(dialect=conn.dialect)) for stmt in stmts)
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(sql)
            results = [cur.fetchall()]
            while cur.nextset():
                results.append(cur.fetchall())
    else:
        results = [conn.execute(stmt).all() for stmt in stmts]
    assert len(results) == len(tables)
    out = {t.name: [tuple(r) for r in rows] for t, rows in zip(tables, results)}
    db.session.commit()
    return out


def _changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before if before[name] != after.get(name))


# --- the test ------------------------------------------------------------------------------------------------------


def test_every_route_for_every_actor(app, world, login):
    started = time.monotonic()
    failures: list[str] = []
    stats = {"requests": 0, "allowed_ok": 0, "denied_ok": 0, "refused_ok": 0, "probes": 0, "finals": 0,
             "fingerprinted": 0, "leak_checked": 0, "binary_bodies": 0, "unauthorized_2xx": 0, "leaks": 0}

    # 0. Every route of the app is in the table, and the table names no route the app lacks.
    routes = {(r.endpoint, m) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}
    table = {(c.endpoint, c.method) for c in TABLE}
    for endpoint, method in sorted(routes - table):
        failures.append(f"new route {endpoint} [{method}] not in the access table")
    for endpoint, method in sorted(table - routes):
        failures.append(f"access table lists {endpoint} [{method}], which the app no longer has")

    users, ids = world.users, world.ids
    actors = {key: Actor(app, login, key, users.get(key), world.tokens.get(key)) for key in ACTORS}

    def check_leaks(case: Case, actor: str, resp) -> None:
        watched = set()
        if actor in OUTSIDERS:
            watched |= EVERYTHING - case.leak_ok - (ORG_NAMES if case.endpoint in ORG_DIRECTORY else set())
        if actor != LA and case.endpoint != "reminders.calendar_feed":
            watched.add(LA_NOTICE)
        if not watched:
            return
        text = _body_text(resp)
        if text is None:
            stats["binary_bodies"] += 1
            text = " ".join(unquote(v) for _k, v in resp.headers.items())
        stats["leak_checked"] += 1
        found = sorted(t for t in watched if t in text)
        if found:
            stats["leaks"] += 1
            failures.append(f"LEAK {case.method} {case.url.format(**ids)} ({case.endpoint}) shows {found} to {actor}")

    def request(actor: str, case: Case, **kw):
        stats["requests"] += 1
        resp = _send(actors[actor], case, ids, **kw)
        try:
            outcome = _outcome(resp)
            if isinstance(outcome, int) and outcome >= 500:
                failures.append(f"{case.method} {case.url.format(**ids)} ({case.endpoint}) as {actor}: {outcome}")
            check_leaks(case, actor, resp)
            return outcome
        finally:
            resp.close()

    def where(case: Case) -> str:
        return f"{case.method} {case.url.format(**ids)} ({case.endpoint})"

    def judge(case: Case, actor: str, outcome, *, changed: list[str] | None = None) -> None:
        if actor in case.ok:
            if _succeeded(case, outcome):
                stats["allowed_ok"] += 1
            else:
                failures.append(f"{where(case)}: {actor} may, but got {outcome}")
        elif actor in case.refused:
            if outcome == "login" or (isinstance(outcome, int) and 500 <= outcome):
                failures.append(f"{where(case)}: {actor} must be refused in place, got {outcome}")
            elif not changed:
                stats["refused_ok"] += 1
        elif _turned_away(case, actor, outcome):
            stats["denied_ok"] += 1
        else:
            if isinstance(outcome, int) and outcome < 400:
                stats["unauthorized_2xx"] += 1
            failures.append(f"UNAUTHORIZED {where(case)}: {actor} must be turned away, got {outcome}")
        if changed and actor not in case.ok:
            failures.append(f"{where(case)}: refused request by {actor} changed {changed}")

    # 1. Reads: every actor, leak-checked; reads write nothing.
    before_reads = _fingerprint()
    for case in TABLE:
        if case.mutates:
            continue
        for actor in ACTORS:
            judge(case, actor, request(actor, case, data=case.data, json_body=case.json))
    changed = _changed_tables(before_reads, _fingerprint())
    if changed:
        failures.append(f"read-only requests changed {changed}")

    # 2. Writes: everyone not allowed, each request fingerprinted; allowed actors send a harmless probe.
    for case in TABLE:
        if not case.mutates:
            continue
        before = _fingerprint()
        for actor in ACTORS:
            if actor in case.ok:
                continue
            outcome = request(actor, case, data=case.data, json_body=case.json)
            stats["fingerprinted"] += 1
            after = _fingerprint()
            judge(case, actor, outcome, changed=_changed_tables(before, after))
            before = after
        if case.probe is not None or case.probe_json is not None:
            for actor in sorted(case.ok):
                stats["probes"] += 1
                outcome = request(actor, case, data=case.probe, json_body=case.probe_json)
                if not _succeeded(case, outcome):
                    failures.append(f"{where(case)} probe: {actor} may, but got {outcome}")

    # 3. A handful of authorized writes for real, in order.
    for case in sorted((c for c in TABLE if c.final is not None), key=lambda c: c.final):
        for actor in sorted(case.final_actors if case.final_actors is not None else case.ok):
            if case.fresh:
                actors[actor] = Actor(app, login, actor, users.get(actor), world.tokens.get(actor))
            stats["finals"] += 1
            outcome = request(actor, case, data=case.data, json_body=case.json)
            if not _succeeded(case, outcome):
                failures.append(f"{where(case)} for real: {actor} may, but got {outcome}")
            if case.endpoint == "auth.logout" and actor != ANON:
                probe = actors[actor].client.get("/")
                if _outcome(probe) != "login":
                    failures.append(f"after signing out, {actor} still reaches / ({probe.status_code})")
                probe.close()

    from coop.activities.models import ConfirmationState

    db.session.expire_all()
    assert world.act.confirmations[0].state is ConfirmationState.confirmed, "LB's confirmation was not stored"

    pairs = len(routes)
    print(
        f"\naccess matrix: {pairs} routes×methods, {len(TABLE)} cases × {len(ACTORS)} actors; "
        f"{stats['requests']} requests ({stats['allowed_ok']} allowed ok, {stats['denied_ok']} turned away, "
        f"{stats['refused_ok']} refused in place, {stats['probes']} probes, {stats['finals']} real writes); "
        f"{stats['fingerprinted']} refused writes fingerprinted; {stats['unauthorized_2xx']} unauthorized 2xx; "
        f"{stats['leak_checked']} responses leak-checked ({stats['binary_bodies']} binary: headers only), "
        f"{stats['leaks']} leaks; {time.monotonic() - started:.1f}s"
    )
    assert not failures, f"{len(failures)} access-matrix failures:\n" + "\n".join(failures)
