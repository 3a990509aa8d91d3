"""Committee review screens: the cockpit, drill-down, evaluations, partner ratings, points, ranking, exports."""
from __future__ import annotations

import io
from datetime import date

from typing import NamedTuple

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload
from werkzeug.routing import BuildError

from agreements.models import Agreement, AgreementParty
from coop.activities.models import Activity, ConfirmationState
from coop.auth.models import Role
from coop.auth.permissions import committee_scope_root, get_or_404, require, scope_org_ids, subtree_filter
from coop.cache import memoized
from coop.categories import CATEGORY_BY_CODE, CATEGORY_CODES
from coop.extensions import db
from coop.formatting import local_today, ui_quarter, ui_year
from coop.home.views import HOME_PANELS, home_memo
from coop.i18n import N_
from coop.orgs.models import ORG_RELATION_LABELS, Organization, OrgRelation
from coop.reports import progress as pg
from coop.reports import queries as report_queries
from coop.review import export, queries, scoring
from coop.review import operations as ops
from coop.review.forms import (
    AdjustmentForm,
    EvaluationForm,
    PartnerEvaluationForm,
    SettingsForm,
    rule_form_class,
)
from coop.review.models import PartnerEvaluation, Rating
from coop.review.permissions import (
    can_adjust_points,
    can_evaluate_activity,
    can_manage_scope,
    can_review_agreement,
    can_view_cockpit,
    can_view_org_score,
    can_view_partner_evaluations,
    partner_org_ids_for,
)
from coop.web import add_nav, error_response

bp = Blueprint("review", __name__, url_prefix="/review")

add_nav("review.cockpit", N_("党委驾驶舱"), can_view_cockpit, order=40)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Matrix rows per page: lists, totals and the export always cover every pairing.
class OrgOption(NamedTuple):
    """One organization in the cockpit's filter: what the option needs, without an ORM row."""

    id: int
    name: str
    depth: int


COCKPIT_PER_PAGE = 50  # issue 10: a page of the grid stays under ~170 KB of HTML for a group-wide scope


# --- helpers ------------------------------------------------------------------------------------------


def _reviewer_scope(user) -> Organization | None:
    """The subtree a reviewer oversees (None for admins: everything). Callers check can_view_cockpit first."""
    return None if user.is_admin else committee_scope_root(user)


def _ui_period_label(year: int, quarter: int | None) -> str:
    """scoring.period_label for screens: 2026年 / 2026年第三季度 in Chinese, 2026 / Q3 2026 in English."""
    return ui_quarter(year, quarter) if quarter else ui_year(year)


_DEFAULT_RULE_LABELS = {r.label for r in scoring.RULES}


@bp.app_template_filter("rule_label")
def _rule_label(label: str) -> str:
    """A point rule's label on screen: the platform's own labels translated, a committee's own text as stored."""
    return _(label) if label in _DEFAULT_RULE_LABELS else label


@bp.app_template_filter("rule_source")
def _rule_source(source: str) -> str:
    """Where a rule's value comes from: 平台默认 / 平台设置 translated, a committee organization's name as it is."""
    return _(source) if source in (scoring.SOURCE_DEFAULT, scoring.SOURCE_PLATFORM) else source


def _rule_states() -> dict[bool, str]:
    """启用 / 停用 said of a rule (not the buttons of the same words)."""
    return {True: pgettext("rule state", "启用"), False: pgettext("rule state", "停用")}


def _period(today: date) -> queries.ReviewPeriod:
    try:
        return queries.parse_period(request.args.get("period"), today)
    except ValueError as exc:
        flash(_("%(error)s 已显示本月。", error=str(exc)), "warning")
        return queries.parse_period(None, today)


def _filters(base: Organization | None) -> dict:
    """Cockpit filters from the query string, each validated (an organization outside the scope is a 404)."""
    org = None
    if request.args.get("org"):
        org = get_or_404(Organization, request.args["org"])
        if base is not None and not org.is_within(base):
            abort(404)
    relation = request.args.get("relation") or None
    if relation not in {r.value for r in OrgRelation}:
        relation = None
    category = request.args.get("category") or None
    if category not in CATEGORY_CODES:
        category = None
    sort = "status" if request.args.get("sort") == "status" else "org"
    return {"org": org, "relation": relation, "category": category, "sort": sort}


def _cockpit_for_request():
    today = local_today()
    period = _period(today)
    base = _reviewer_scope(current_user)
    f = _filters(base)
    scope = f["org"] or base
    cockpit = queries.build_cockpit(
        scope, period, relation=f["relation"], category=f["category"], sort=f["sort"],
        stalled_days=queries.stalled_days_for(base),
    )
    return cockpit, base, f, today


def _args(**changes) -> dict:
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items()})
    return {k: v for k, v in args.items() if v not in (None, "")}


def _year_quarter(default: str = "year") -> tuple[int, int | None]:
    """?year=&quarter= (quarter empty: the whole year). Without them: this year ("year") or the last
    completed quarter ("last_quarter")."""
    today = local_today()
    q_now = (today.month - 1) // 3 + 1
    if default == "last_quarter":
        default = (today.year, q_now - 1) if q_now > 1 else (today.year - 1, 4)
    else:
        default = (today.year, None)
    year = request.args.get("year", type=int) or default[0]
    raw_q = request.args.get("quarter")
    if raw_q is None:
        quarter = default[1]
    elif raw_q == "":
        quarter = None
    else:
        quarter = int(raw_q) if raw_q in ("1", "2", "3", "4") else default[1]
    if not 2000 <= year <= today.year:
        year = default[0]
    return year, quarter


@bp.app_template_global("score_years")
def score_years_global(today: date) -> list[int]:
    """The years the points and typical-case pickers offer (coop.review.scoring.score_years)."""
    return scoring.score_years(today)


@bp.app_template_global()
def agreement_url(agreement_id: int) -> str:
    """Link to an agreement's page (the agreements domain's), whatever its endpoint is called."""
    try:
        return url_for("agreements.detail", agreement_id=agreement_id)
    except BuildError:
        return f"/agreements/{agreement_id}"


@bp.app_template_global()
def activity_url(activity_id: int) -> str:
    """Link to an activity's page (the activities domain's)."""
    try:
        return url_for("activities.detail", activity_id=activity_id)
    except BuildError:
        return f"/activities/{activity_id}"


@bp.app_template_global()
def review_activity_panel(activity: Activity) -> dict:
    """What templates/review/_activity_evaluations.html needs: the evaluations and whether the viewer may add one."""
    return {
        "evaluations": queries.evaluations_for_activity(activity.id),
        "can_evaluate": can_evaluate_activity(current_user, activity),
        "evaluate_url": url_for("review.evaluate", activity_id=activity.id),
    }


# --- the cockpit ------------------------------------------------------------------------------------------


@bp.route("/")
@login_required
def cockpit():
    require(can_view_cockpit(current_user))
    cockpit, base, f, today = _cockpit_for_request()
    # Plain columns for the organization filter (hundreds of options at group scope; issue 10).
    org_stmt = (sa.select(Organization.id, Organization.name, Organization.path)
                .where(Organization.is_active.is_(True)).order_by(Organization.path))
    if base is not None:
        org_stmt = org_stmt.where(subtree_filter(base))
    period = cockpit.period
    pages = max(1, -(-len(cockpit.rows) // COCKPIT_PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    nav = {
        "prev": period.shifted(-1, today),
        "next": period.shifted(1, today),
        "kinds": [(k, label, period.as_kind(k, today))
                  for k, label in (("month", _("月")), ("quarter", _("季度")), ("year", _("年")))],
    }
    return render_template(
        "review/cockpit.html", c=cockpit, base=base, f=f, orgs=[OrgOption(i, n, p.strip("/").count("/")) for i, n, p in db.session.execute(org_stmt)],
        rows=cockpit.rows[(page - 1) * COCKPIT_PER_PAGE : page * COCKPIT_PER_PAGE], page=page, pages=pages,
        per_page=COCKPIT_PER_PAGE,
        relations=ORG_RELATION_LABELS, nav=nav, args=_args, today=today,
        symbols=report_queries.STATUS_SYMBOLS, status_labels=pg.STATUS_LABELS, status_css=queries.STATUS_CSS,
        cell_base=url_for("review.cell"), category_names={cat.code: cat.label for cat in cockpit.categories},
    )


@bp.route("/cell")
@login_required
def cell():
    require(can_view_cockpit(current_user))
    agreement = get_or_404(Agreement, request.args.get("agreement_id"))
    # 404, not 403: a reviewer guessing ids learns nothing about pairings outside the subtree.
    if not can_review_agreement(current_user, agreement):
        abort(404)
    category = request.args.get("category")
    if category not in CATEGORY_CODES:
        abort(404)
    today = local_today()
    try:
        period = queries.parse_period(request.args.get("period"), today)
    except ValueError:
        abort(404)
    progress = pg.agreement_progress([agreement], period.first, period.last)[agreement.id][category]
    activities = queries.cell_activities(agreement.id, category, period)
    return render_template(
        "review/cell.html", agreement=agreement, category=CATEGORY_BY_CODE[category], period=period, p=progress,
        activities=activities, ytd=queries.year_to_date_activities(agreement.id, category, period),
        counts=lambda a: queries.counts_in_period(a, period), symbols=report_queries.STATUS_SYMBOLS,
        confirmation_header=pgettext("column", "确认"),
        status_css=queries.STATUS_CSS, back=url_for("review.cockpit", period=period.key),
    )


@bp.route("/export/cockpit.xlsx")
@login_required
def export_cockpit():
    require(can_view_cockpit(current_user))
    cockpit, _base, _f, _today = _cockpit_for_request()
    buf = io.BytesIO()
    export.write_cockpit_xlsx(buf, cockpit)
    buf.seek(0)
    return send_file(buf, mimetype=XLSX, as_attachment=True, download_name=f"共建进度-{cockpit.period.key}.xlsx")


# --- activity evaluation -------------------------------------------------------------------------------------


@bp.route("/activities/<int:activity_id>/evaluate", methods=["GET", "POST"])
@login_required
def evaluate(activity_id):
    activity = get_or_404(Activity, activity_id)
    require(can_evaluate_activity(current_user, activity))
    evaluations = queries.evaluations_for_activity(activity.id)
    mine = next((e for e in evaluations if e.reviewer_id == current_user.id), None)
    form = EvaluationForm(obj=None)
    disputed = activity.confirmation is ConfirmationState.disputed
    if request.method == "GET" and mine is not None:
        form.rating.data, form.comment.data, form.typical_case.data = mine.rating.value, mine.comment, mine.typical_case
    if disputed and request.method == "GET":
        # Shown unticked and disabled, with the reason as its hint: saving unmarks a case disputed since.
        form.typical_case.data = False
        form.typical_case.render_kw = {"disabled": True}
    if form.validate_on_submit():
        try:
            ops.evaluate_activity(current_user, activity, rating=Rating(form.rating.data), comment=form.comment.data,
                                  typical_case=form.typical_case.data)
        except ops.ReviewRefused as exc:
            db.session.rollback()
            where = form.typical_case if disputed and form.typical_case.data else form.comment
            where.errors = list(where.errors) + [str(exc)]
        else:
            db.session.commit()
            flash(_("评价已保存。"), "success")
            return redirect(activity_url(activity.id))
    return render_template("review/evaluate.html", activity=activity, form=form, evaluations=evaluations, mine=mine,
                           typical_refusal=ops.typical_case_refusal() if disputed else None)


@bp.route("/typical")
@login_required
def typical():
    require(can_view_cockpit(current_user))
    year, quarter = _year_quarter()
    first, last = scoring.score_period(year, quarter)
    ids = scope_org_ids(current_user)
    cases = queries.typical_cases(ids, first, last)
    return render_template("review/typical.html", cases=cases, year=year, quarter=quarter,
                           label=_ui_period_label(year, quarter), today=local_today())


# --- partner (two-way) evaluation ----------------------------------------------------------------------------


@bp.route("/agreements/<int:agreement_id>/partners", methods=["GET", "POST"])
@login_required
def partners(agreement_id):
    agreement = db.session.execute(
        sa.select(Agreement).where(Agreement.id == agreement_id)
        .options(selectinload(Agreement.parties).selectinload(AgreementParty.organization))
    ).scalar_one_or_none()
    if agreement is None:
        abort(404)
    require(can_view_partner_evaluations(current_user, agreement))
    today = local_today()
    mine = sorted(partner_org_ids_for(current_user, agreement))
    orgs = {p.organization_id: p.organization for p in agreement.parties}
    open_quarters = [q for q in ops.rateable_quarters(today)
                     if agreement.starts_on <= pg.quarter_bounds(*q)[1] and agreement.ends_on >= pg.quarter_bounds(*q)[0]]
    existing = db.session.execute(
        sa.select(PartnerEvaluation).where(PartnerEvaluation.agreement_id == agreement.id)
        .options(selectinload(PartnerEvaluation.by))
        .order_by(PartnerEvaluation.year.desc(), PartnerEvaluation.quarter.desc(), PartnerEvaluation.from_org_id)
    ).scalars().all()
    by_key = {(e.year, e.quarter, e.from_org_id, e.to_org_id): e for e in existing}

    # One form per (open quarter, my party, partner); the prefix tells them apart on the page and in the POST.
    slots = []
    for (year, quarter) in open_quarters:
        for from_id in mine:
            for to_id in agreement.party_org_ids:
                if to_id == from_id:
                    continue
                prefix = f"q{year}{quarter}f{from_id}t{to_id}"
                current = by_key.get((year, quarter, from_id, to_id))
                form = PartnerEvaluationForm(prefix=prefix, formdata=None)
                if current is not None:
                    form.score.data, form.comment.data = str(current.score), current.comment
                slots.append({"year": year, "quarter": quarter, "from": orgs[from_id], "to": orgs[to_id],
                              "prefix": prefix, "form": form, "current": current,
                              "closes": ops.partner_window(year, quarter)[1]})
    if request.method == "POST":
        slot = next((s for s in slots if s["prefix"] == request.form.get("slot")), None)
        if slot is None:
            flash(_("该季度的互评已截止，或您不能代表这一方评价。"), "error")
            return redirect(url_for("review.partners", agreement_id=agreement.id))
        form = PartnerEvaluationForm(prefix=slot["prefix"])
        slot["form"] = form
        if form.validate_on_submit():
            try:
                ops.rate_partner(current_user, agreement, from_org_id=slot["from"].id, to_org_id=slot["to"].id,
                                 year=slot["year"], quarter=slot["quarter"], score=int(form.score.data),
                                 comment=form.comment.data, today=today)
            except ops.ReviewRefused as exc:
                db.session.rollback()
                form.score.errors = list(form.score.errors) + [str(exc)]
            else:
                db.session.commit()
                flash(_("互评已保存。"), "success")
                return redirect(url_for("review.partners", agreement_id=agreement.id))
    return render_template("review/partners.html", agreement=agreement, slots=slots, history=existing, orgs=orgs,
                           quarter_names=queries.QUARTER_NAMES, today=today,
                           is_reviewer=can_review_agreement(current_user, agreement))


# --- points ------------------------------------------------------------------------------------------------


@bp.route("/scores")
@login_required
def scores():
    require(can_view_cockpit(current_user))
    year, quarter = _year_quarter()
    base = _reviewer_scope(current_user)
    scores, short_names, lines_by_org = _scores_page(base, year, quarter)
    return render_template("review/scores.html", scores=scores, short_names=short_names, year=year, quarter=quarter,
                           lines_by_org=lines_by_org,
                           label=_ui_period_label(year, quarter), today=local_today(), base=base,
                           rule_codes=scoring.RULE_CODES, rules=scoring.RULES, rule_states=_rule_states())


def _scores_page(base: Organization | None, year: int, quarter: int | None):
    """The scores page's data: the scope's scores, each organization's short name, each one's lines by rule.

    Issue 10: plain data memoised per data generation, scope and period (like scoring.scope_scores, which
    it reads), so a visit runs no scoring query and loads no organization row. Shared: never changed."""
    def compute():
        result = scoring.scope_scores(base, year, quarter)
        short_names = dict(db.session.execute(
            sa.select(Organization.id, Organization.short_name).where(Organization.id.in_(list(result)))).all())
        return (list(result.values()), short_names,
                {s.org_id: {line.rule: line for line in s.lines} for s in result.values()})

    return memoized("review.scores_page", (base.id if base is not None else None, year, quarter), compute)


@bp.route("/export/scores.xlsx")
@login_required
def export_scores():
    require(can_view_cockpit(current_user))
    year, quarter = _year_quarter()
    base = _reviewer_scope(current_user)
    result = scoring.scope_scores(base, year, quarter)
    buf = io.BytesIO()
    label = scoring.period_label(year, quarter)
    export.write_scores_xlsx(buf, result.values(), label)
    buf.seek(0)
    return send_file(buf, mimetype=XLSX, as_attachment=True, download_name=f"共建积分-{label}.xlsx")


@bp.route("/scores/<int:org_id>", methods=["GET", "POST"])
@login_required
def org_score(org_id):
    org = get_or_404(Organization, org_id)
    require(can_view_org_score(current_user, org))
    year, quarter = _year_quarter()
    can_adjust = can_adjust_points(current_user, org)
    form = AdjustmentForm()
    if request.method == "GET":
        form.applies_on.data = local_today()
    # The date picker offers the same days adjust_points accepts (a new dict: render_kw is shared by the class).
    form.applies_on.render_kw = {**(form.applies_on.render_kw or {}),
                                 "min": f"{scoring.score_years(local_today())[-1]}-01-01",
                                 "max": local_today().isoformat()}
    if request.method == "POST":
        require(can_adjust)
        if form.validate_on_submit():
            try:
                ops.adjust_points(current_user, org, points=form.points.data, reason=form.reason.data,
                                  applies_on=form.applies_on.data)
            except ops.ReviewRefused as exc:
                db.session.rollback()
                where = form.applies_on if exc.field == "applies_on" else form.reason
                where.errors = list(where.errors) + [str(exc)]
            else:
                db.session.commit()
                flash(_("积分调整已记录，并写入审计日志。"), "success")
                d = form.applies_on.data
                return redirect(url_for("review.org_score", org_id=org.id, year=d.year, quarter=(d.month - 1) // 3 + 1))
    score = scoring.score_breakdown([org.id], year, quarter)[org.id]
    items = scoring.score_items(org.id, year, quarter)
    return render_template("review/org_score.html", org=org, score=score, items=items, year=year, quarter=quarter,
                           label=_ui_period_label(year, quarter), form=form, can_adjust=can_adjust,
                           rules=scoring.RULE_BY_CODE, today=local_today(),
                           is_reviewer=can_view_cockpit(current_user))


def _managed_scope() -> Organization | None:
    """The scope whose rules/settings the current user edits: their committee root; admins: ?scope= or platform."""
    if current_user.is_admin:
        raw = request.args.get("scope")
        return get_or_404(Organization, raw) if raw else None
    return committee_scope_root(current_user)


@bp.route("/rules", methods=["GET", "POST"])
@login_required
def rules():
    scope = _managed_scope() if can_view_cockpit(current_user) else None
    editable = can_view_cockpit(current_user) and can_manage_scope(current_user, scope)
    if can_view_cockpit(current_user):
        effective = scoring.scope_rules(scope)
    elif current_user.organization is not None:
        effective = scoring.effective_rules([current_user.organization])[current_user.organization_id]
    else:
        effective = scoring.scope_rules(None)
    RuleForm = rule_form_class()
    form = RuleForm()
    if request.method == "GET":
        for code, eff in effective.items():
            getattr(form, f"points_{code}").data = eff.points
            getattr(form, f"active_{code}").data = eff.active
    if request.method == "POST":
        require(editable)
        if form.validate_on_submit():
            for code in scoring.RULE_CODES:
                points = getattr(form, f"points_{code}").data
                active = getattr(form, f"active_{code}").data
                # Unchanged rules keep inheriting from the scope above (no row is written for them).
                if (points, active) != (effective[code].points, effective[code].active):
                    ops.set_point_rule(current_user, scope, code, points=points, active=active)
            db.session.commit()
            flash(_("积分规则已保存，并写入审计日志。"), "success")
            return redirect(url_for("review.rules", **({"scope": scope.id} if current_user.is_admin and scope else {})))
    return render_template("review/rules.html", form=form, effective=effective, rules=scoring.RULES, scope=scope,
                           editable=editable, rule_states=_rule_states())


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings():
    require(can_view_cockpit(current_user))
    scope = _managed_scope()
    require(can_manage_scope(current_user, scope))
    row = queries.review_setting(scope)
    form = SettingsForm()
    if request.method == "GET":
        form.ranking_published.data = bool(row and row.ranking_published)
        form.stalled_days.data = row.stalled_days if row else queries.stalled_days_for(scope)
    if form.validate_on_submit():
        try:
            ops.update_review_setting(current_user, scope, ranking_published=form.ranking_published.data,
                                      stalled_days=form.stalled_days.data)
        except ops.ReviewRefused as exc:
            db.session.rollback()
            form.stalled_days.errors = list(form.stalled_days.errors) + [str(exc)]
        else:
            db.session.commit()
            flash(_("设置已保存。"), "success")
            return redirect(url_for("review.settings", **({"scope": scope.id} if current_user.is_admin and scope else {})))
    return render_template("review/settings.html", form=form, scope=scope)


@bp.route("/ranking")
@login_required
def ranking():
    year, quarter = _year_quarter("last_quarter")
    quarter = quarter or 4
    if can_view_cockpit(current_user):
        scope = _managed_scope()
        setting = queries.review_setting(scope)
        published = bool(setting and setting.ranking_published)
    else:
        setting = queries.published_ranking_scope(current_user.organization)
        if setting is None:
            return error_response(404, _("党委尚未公布季度积分排名。排名默认不公开，由党委决定是否公布。"))
        scope, published = setting.scope_org, True
    rows = scoring.ranking(scope, year, quarter)
    return render_template("review/ranking.html", rows=rows, scope=scope, published=published, year=year,
                           quarter=quarter, label=_ui_period_label(year, quarter), today=local_today(),
                           is_reviewer=can_view_cockpit(current_user))


# --- home panels and the reports hook ---------------------------------------------------------------------


def _reviewer_panel(user):
    if not user.is_authenticated or user.is_admin or committee_scope_root(user) is None:
        return None
    scope = committee_scope_root(user)
    summary = queries.scope_summary(scope, local_today())
    return {"order": 15, "template": "review/_home_panel.html", "review_summary": summary, "review_scope": scope}


def _party_panel(user):
    """Secretaries and liaisons: partner ratings open this quarter (only when one is still missing)."""
    if not user.is_authenticated or user.organization_id is None or not user.has_role(Role.secretary, Role.liaison):
        return None
    today = local_today()
    quarters = ops.rateable_quarters(today)
    # Ask only near the quarter's end: in its last month, or in the grace days after it.
    due = [(y, q) for (y, q) in quarters if today >= pg.quarter_bounds(y, q)[1].replace(day=1)]
    if not due:
        return None
    # Issue 10: which ratings are missing is memoised per data generation (keyed on the day, which decides `due`);
    # a visit loads only the agreements shown.
    found = home_memo(user, today, "review.partner", lambda: _partner_missing(user, due))
    if found is None:
        return None
    shown, total = found
    agreements = {a.id: a for a in db.session.scalars(
        sa.select(Agreement).where(Agreement.id.in_({i for i, _y, _q in shown})))}
    return {"order": 40, "template": "review/_home_partner.html",
            "partner_missing": [(agreements[i], y, q) for i, y, q in shown if i in agreements],
            "partner_missing_total": total, "quarter_names": queries.QUARTER_NAMES,
            "partner_closes": {(y, q): ops.partner_window(y, q)[1] for (y, q) in due}}


def _partner_missing(user, due) -> tuple[list[tuple[int, int, int]], int] | None:
    """([(agreement id, year, quarter)] of the first five ratings the user's party still owes, how many), or None."""
    agreements = db.session.execute(
        sa.select(Agreement)
        .join(AgreementParty, AgreementParty.agreement_id == Agreement.id)
        .where(AgreementParty.organization_id == user.organization_id,
               report_queries.active_in_month_filter(*pg.quarter_bounds(*due[0])))
        # liaisons too: partner_org_ids_for reads them for every agreement (one query, not one per agreement)
        .options(selectinload(Agreement.parties), selectinload(Agreement.liaisons))
    ).scalars().all()
    if not agreements:
        return None
    done = set(db.session.execute(
        sa.select(PartnerEvaluation.agreement_id, PartnerEvaluation.year, PartnerEvaluation.quarter)
        .where(PartnerEvaluation.from_org_id == user.organization_id,
               PartnerEvaluation.agreement_id.in_([a.id for a in agreements]))
    ).all())
    # A renewal whose term begins inside the quarter overlaps its predecessor there: the pair rates that quarter
    # once, under the agreement that was in force (not twice, with two identical titles).
    listed = {a.id for a in agreements}
    missing = [(a.id, y, q) for a in agreements for (y, q) in due if (a.id, y, q) not in done
               and a.renewed_from_id not in listed and user.organization_id in partner_org_ids_for(user, a)]
    if not missing:
        return None
    return missing[:5], len(missing)


HOME_PANELS.append(_reviewer_panel)
HOME_PANELS.append(_party_panel)


def _typical_case_provider(agreement_ids, first, last):
    """Typical cases for the monthly committee report, in the reports domain's shape."""
    return [
        report_queries.TypicalCase(activity_id=c.activity_id, title=c.title, held_on=c.held_on, category=c.category,
                                   organizations=c.organizations, reason=c.reason)
        for c in queries.typical_cases_for_agreements(list(agreement_ids), first, last)
    ]


if hasattr(report_queries, "TYPICAL_CASE_PROVIDERS"):
    report_queries.TYPICAL_CASE_PROVIDERS.append(_typical_case_provider)
