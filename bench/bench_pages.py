"""Group-scale benchmark of pages, API, reminders, reports and the ledger export (issue 10). Prints figures.

    python bench/bench_pages.py --instance /tmp/coop_bench [--reuse] [--database-url postgresql://…/coop_bench]
                                [--requests 30] [--skip-small] [--skip-export] [--skip-reports] [--json out.json]

It builds (or with --reuse, reuses) two instances under --instance: `large` (the demo group plus
`seed-demo --scale large`: 300 organizations, 1,500 users, 600 agreements, 60,000 activities) and `small`
(the normal demo only). With --database-url the databases are PostgreSQL: the URL's database for the large
instance and `<name>_small` next to it (both created when missing, rebuilt unless --reuse). The schema
comes from the Alembic migrations, plus any index declared on the models that the migrations lack (so a
proposed index can be measured before its migration exists; such indexes are listed).

Everything is measured server-side in one process with the Flask test client (no network), with signed-in
sessions for a liaison and a secretary of the busiest organization, a group committee reviewer at the root
(`dangwei`) and an API token of that reviewer:

- each page / endpoint: median and p95 wall time over --requests requests, SQL statements per request
  (a before_cursor_execute listener; BEGIN/PRAGMA/COMMIT not counted) at large and at small scale;
- its floor, in the same run: a bare authenticated route of the same kind (cookie session or bearer token)
  plus re-rendering the page's own template with the very context the view produced (captured through
  flask.template_rendered during one real request, so nothing is left to load); for JSON endpoints, the bare
  API route plus serialising the same payload;
- the reminder sweep over everything (first run after loading, then a steady-state run);
- an agreement report PDF and the group committee report PDF (best of a few runs, median shown too), with
  WeasyPrint alone on the same final HTML as their floor;
- the 60,000-row Excel ledger export through the real route, in a subprocess: time and peak RSS growth,
  also for a tenth of the rows (memory must not grow with rows);
- the web process RSS after all page requests;
- for each page, the first view after a write anywhere ("after a write": the memoised group-scale figures of
  coop.cache are all invalid then, so this is what the view costs when it has to aggregate again).

Targets (issue 10): page/endpoint p95 < 150 ms and median within 3× its floor; SQL per request independent of
data size; sweep < 3 s; agreement report < 0.5 s; group committee report < 5 s; 60k-row export < 15 s with
memory not growing with rows; web process < 300 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SKIP_SQL = ("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


# --- instances -------------------------------------------------------------------------------------------------


def _pg_admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def instance_paths(args) -> dict[str, tuple[Path, str]]:
    """{'large': (instance dir, database url), 'small': (…)}."""
    base = Path(args.instance).resolve()
    out = {}
    for scale in ("large", "small"):
        inst = base / scale
        if args.database_url:
            url = args.database_url if scale == "large" else f"{args.database_url}_small"
        else:
            url = f"sqlite:///{inst / 'coop.sqlite3'}"
        out[scale] = (inst, url)
    return out


def _reset_database(inst: Path, url: str) -> None:
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(str(inst / "coop.sqlite3") + suffix).unlink(missing_ok=True)
        return
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(_sa_url(_pg_admin_url(url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _database_ready(url: str) -> bool:
    """True when the database exists and holds the demo (and, for large, the generated data)."""
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(_sa_url(url))
        with eng.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM users WHERE username = 'dangwei'")).scalar()
        eng.dispose()
        return bool(n)
    except Exception:
        return False


def build_child(scale: str, inst: Path, url: str) -> None:
    """(subprocess) Create the schema and load the demo (and the large data): the measuring process stays clean."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from app import create_app
    from coop import demo
    from coop.extensions import db

    inst.mkdir(parents=True, exist_ok=True)
    app = create_app({"DATABASE_URL": url}, instance_path=str(inst))
    t0 = time.perf_counter()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        added = []
        for table in db.metadata.sorted_tables:
            existing = {ix["name"] for ix in sa.inspect(db.engine).get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in existing:
                    index.create(db.engine)
                    added.append(index.name)
        if added:
            print(f"  model indexes not in the migrations (created for this run): {', '.join(added)}")
        demo.seed_demo(echo=lambda s: None)
        print(f"  demo group: {time.perf_counter() - t0:.1f} s")
        if scale == "large":
            from coop import demo_large

            t1 = time.perf_counter()
            demo_large.seed_large(echo=print)
            print(f"  seed --scale large (generated part): {time.perf_counter() - t1:.1f} s")
        if db.engine.dialect.name == "sqlite":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
    print(f"  {scale} instance ready in {time.perf_counter() - t0:.1f} s")


def ensure_instances(args) -> None:
    paths = instance_paths(args)
    scales = ["large"] + ([] if args.skip_small else ["small"])
    for scale in scales:
        inst, url = paths[scale]
        if args.reuse and _database_ready(url):
            print(f"[{scale}] reusing {url}")
            continue
        print(f"[{scale}] building {url} …")
        inst.mkdir(parents=True, exist_ok=True)
        for sub in ("uploads", "archive", "outbox"):
            shutil.rmtree(inst / sub, ignore_errors=True)
        _reset_database(inst, url)
        subprocess.run([sys.executable, __file__, "--build-child", scale, "--instance", args.instance]
                       + (["--database-url", args.database_url] if args.database_url else []), check=True)


# --- measuring helpers -------------------------------------------------------------------------------------------


@dataclass
class Figure:
    group: str
    name: str
    unit: str = "ms"
    median: float | None = None
    p95: float | None = None
    target: str = ""
    floor: float | None = None
    ok: bool | None = None
    queries: int | None = None
    queries_small: int | None = None
    note: str = ""
    status: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.median is None or not self.floor:
            return None
        return self.median / self.floor


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class QueryCounter:
    def __init__(self):
        self.n = 0
        self.statements: list[str] = []
        self.keep = False

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(SKIP_SQL):
            return
        self.n += 1
        if self.keep:
            self.statements.append(statement)

    @contextmanager
    def counting(self, keep: bool = False):
        self.n, self.keep, self.statements = 0, keep, []
        yield self
        self.keep = False


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    cur = peak = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


# --- the application under test ----------------------------------------------------------------------------------


def make_app(inst: Path, url: str):
    from flask import jsonify
    from flask_login import login_required

    from app import create_app

    app = create_app({"DATABASE_URL": url, "WTF_CSRF_ENABLED": False}, instance_path=str(inst))

    # The floors' bare routes: same authentication as the real pages / API, no work, no template.
    @app.route("/_bench/bare")
    @login_required
    def _bench_bare():
        return "ok"

    @app.route("/api/v1/_bench_bare")
    def _bench_api_bare():
        from coop.api.auth import authenticate_request

        authenticate_request()
        return jsonify({"ok": True})

    return app


@dataclass
class Actors:
    liaison: object
    secretary: object
    reviewer: object
    org_id: int
    agreement_id: int
    activity_id: int
    report_agreement_id: int
    cookies: dict = field(default_factory=dict)
    token: str = ""


def pick_actors(app, year: int, month: int) -> Actors:
    """The busiest organization's liaison and secretary, the root reviewer, their busiest agreement/activity."""
    import sqlalchemy as sa

    from agreements.models import AgreementParty
    from coop.activities.models import Activity, ActivityAgreement, ActivityOrganization, Attachment
    from coop.auth.models import Role, User, UserRole
    from coop.extensions import db
    from coop.reports.progress import month_bounds

    with app.app_context():
        def user_with(org_id, role):
            return db.session.execute(
                sa.select(User).join(UserRole, UserRole.user_id == User.id)
                .where(User.organization_id == org_id, UserRole.role == role).order_by(User.id).limit(1)
            ).scalar()

        busiest = db.session.execute(
            sa.select(ActivityOrganization.organization_id, sa.func.count().label("n"))
            .group_by(ActivityOrganization.organization_id).order_by(sa.desc("n"))
        ).all()
        for org_id, _n in busiest:
            liaison, secretary = user_with(org_id, Role.liaison), user_with(org_id, Role.secretary)
            if liaison is not None and secretary is not None and liaison.id != secretary.id:
                break
        else:
            raise SystemExit("no organization with both a liaison and a secretary")
        reviewer = db.session.execute(sa.select(User).where(User.username == "dangwei")).scalar_one()
        agreement_id = db.session.execute(
            sa.select(ActivityAgreement.agreement_id, sa.func.count().label("n"))
            .join(AgreementParty, AgreementParty.agreement_id == ActivityAgreement.agreement_id)
            .where(AgreementParty.organization_id == org_id)
            .group_by(ActivityAgreement.agreement_id).order_by(sa.desc("n")).limit(1)
        ).first()[0]
        activity_id = db.session.execute(
            sa.select(Activity.id)
            .join(ActivityOrganization, ActivityOrganization.activity_id == Activity.id)
            .outerjoin(Attachment, Attachment.activity_id == Activity.id)
            .where(ActivityOrganization.organization_id == org_id)
            .group_by(Activity.id).order_by(sa.func.count(Attachment.id).desc(), Activity.id.desc()).limit(1)
        ).scalar()
        first, last = month_bounds(year, month)
        report_agreement_id = db.session.execute(
            sa.select(ActivityAgreement.agreement_id, sa.func.count().label("n"))
            .join(Activity, Activity.id == ActivityAgreement.activity_id)
            .where(Activity.held_on >= first, Activity.held_on <= last)
            .group_by(ActivityAgreement.agreement_id).order_by(sa.desc("n")).limit(1)
        ).first()[0]
        db.session.expunge_all()
        return Actors(liaison, secretary, reviewer, org_id, agreement_id, activity_id, report_agreement_id)


def sign_in(app, actors: Actors) -> dict:
    """A logged-in test client per role (server-side login sessions, like a real sign-in) and an API token."""
    from coop.api.auth import issue_token
    from coop.auth.models import LoginSession
    from coop.auth.operations import _token_hash
    from coop.extensions import db

    clients = {}
    with app.app_context():
        for role in ("liaison", "secretary", "reviewer"):
            user = getattr(actors, role)
            token = secrets.token_urlsafe(16)
            db.session.add(LoginSession(token_hash=_token_hash(token), user_id=user.id))
            db.session.commit()
            client = app.test_client()
            with client.session_transaction() as sess:
                sess["_user_id"] = token
                sess["_fresh"] = True
            clients[role] = client
        user = db.session.merge(actors.reviewer)
        secret, _row = issue_token(user, ip="127.0.0.1", user_agent="bench")
        db.session.commit()
    clients["api"] = app.test_client()
    actors.token = secret
    return clients


def endpoints(actors: Actors, year: int, month: int) -> list[tuple[str, str, str]]:
    """(label, client role, url) of every measured page and endpoint."""
    m = f"{year}-{month:02d}"
    q = (month - 1) // 3 + 1
    a, act, rep = actors.agreement_id, actors.activity_id, actors.report_agreement_id
    return [
        ("home (liaison)", "liaison", "/"),
        ("home (secretary)", "secretary", "/"),
        ("home (group reviewer)", "reviewer", "/"),
        ("activities ledger (liaison)", "liaison", "/activities/"),
        ("activities ledger (group)", "reviewer", "/activities/committee"),
        ("agreement ledger", "secretary", f"/activities/agreement/{a}"),
        ("activity detail", "liaison", f"/activities/{act}"),
        ("agreement list (secretary)", "secretary", "/agreements/"),
        ("agreement list (group)", "reviewer", "/agreements/"),
        ("agreement detail", "secretary", f"/agreements/{a}"),
        ("cockpit group month", "reviewer", f"/review/?period={m}"),
        ("cockpit group quarter", "reviewer", f"/review/?period={year}-Q{q}"),
        ("cockpit group year", "reviewer", f"/review/?period={year}"),
        ("review scores (group)", "reviewer", "/review/scores"),
        ("notifications (liaison)", "liaison", "/notifications"),
        ("notifications (group)", "reviewer", "/notifications"),
        ("reports list (secretary)", "secretary", "/reports/"),
        ("reports list (group)", "reviewer", "/reports/"),
        ("agreement report page", "reviewer", f"/reports/agreements/{rep}/{m}"),
        ("API agreements", "api", "/api/v1/agreements"),
        ("API activities", "api", "/api/v1/activities"),
        ("API agreement", "api", f"/api/v1/agreements/{a}"),
        ("API activity", "api", f"/api/v1/activities/{act}"),
        ("API report data (agreement)", "api", f"/api/v1/reports/monthly?month={m}&agreement_id={rep}"),
        ("API report data (group)", "api", f"/api/v1/reports/monthly?month={m}"),
        ("API notifications", "api", "/api/v1/notifications"),
    ]


def measure_endpoints(app, clients, actors: Actors, counter: QueryCounter, n: int, year: int, month: int,
                      *, counts_only: bool = False, bare: dict | None = None) -> dict[str, Figure]:
    from coop import cache

    headers = {"api": {"Authorization": f"Bearer {actors.token}"}}
    out: dict[str, Figure] = {}
    for label, role, url in endpoints(actors, year, month):
        client = clients[role]
        kw = {"headers": headers.get(role, {})}
        fig = Figure("page" if role != "api" else "api", label)
        fig.extra["url"] = url
        with counter.counting(keep=True):
            t0 = time.perf_counter()
            resp = client.get(url, **kw)
            first = time.perf_counter() - t0
        fig.status = resp.status_code
        fig.queries = counter.n
        fig.extra["statements"] = counter.statements
        if resp.status_code != 200:
            fig.note = f"HTTP {resp.status_code}"
            out[label] = fig
            print(f"  {label:32} HTTP {resp.status_code} {url}")
            continue
        if counts_only:
            out[label] = fig
            continue
        # Floor, part 1: for a page, its own template re-rendered n times from the context the view produced,
        # inside that same request (after_request hook), so nothing is left to load and url_for/request work;
        # for JSON, serialising the same payload n times.
        if role != "api":
            _RERENDER.clear()
            _RERENDER.update(n=n, times=[], captured=None)
            client.get(url, headers={**kw["headers"], "X-Bench-Rerender": "1"})
            render_times = list(_RERENDER["times"])
            if not render_times:
                fig.note = "no template rendered"
        else:
            payload = resp.get_json()
            render_times = []
            for _ in range(n):
                t0 = time.perf_counter()
                app.json.dumps(payload)
                render_times.append(time.perf_counter() - t0)
        reps = n if first < 1.0 else max(5, min(n, int(10 / max(first, 0.01))))
        times, cpus, qs = [], [], []
        for _ in range(2):
            client.get(url, **kw)
        for _ in range(reps):
            with counter.counting():
                t0, c0 = time.perf_counter(), time.thread_time()
                client.get(url, **kw)
                times.append(time.perf_counter() - t0)
                cpus.append(time.thread_time() - c0)
            qs.append(counter.n)
        fig.median, fig.p95 = statistics.median(times) * 1000, pct(times, 0.95) * 1000
        fig.queries = max(qs)
        # The first view after a write anywhere: every memoised figure (coop.cache) is invalid then.
        cold = []
        for _ in range(3):
            cache.clear()
            t0 = time.perf_counter()
            client.get(url, **kw)
            cold.append(time.perf_counter() - t0)
        fig.extra["after_write_ms"] = statistics.median(cold) * 1000
        b = (bare or {}).get("_bare_api" if role == "api" else f"_bare_{role}")
        render_ms = statistics.median(render_times) * 1000 if render_times else 0.0
        fig.floor = (b.median if b else 0.0) + render_ms
        fig.extra.update(render_ms=render_ms, bare_ms=b.median if b else None, reps=reps, bytes=len(resp.data),
                         cpu_ms=statistics.median(cpus) * 1000)
        fig.ok = fig.p95 < 150 and (fig.ratio or 0) <= 3
        fig.target = "p95<150, ≤3×floor"
        out[label] = fig
        print(f"  {label:32} median {fig.median:7.1f} ms  p95 {fig.p95:7.1f} ms  CPU {fig.extra['cpu_ms']:7.1f} ms  "
              f"floor {fig.floor:6.1f} ms (render {render_ms:5.1f})  SQL {fig.queries:3d}  {len(resp.data) // 1024} KiB  "
              f"after a write {fig.extra['after_write_ms']:6.1f} ms")
    return out


def profile_endpoints(app, clients, actors: Actors, wanted: str, n: int, year: int, month: int) -> None:
    """cProfile ``n`` warm requests of each endpoint whose label contains ``wanted``; print where the time goes."""
    import cProfile
    import pstats

    headers = {"api": {"Authorization": f"Bearer {actors.token}"}}
    for label, role, url in endpoints(actors, year, month):
        if wanted not in label:
            continue
        client, kw = clients[role], {"headers": headers.get(role, {})}
        for _ in range(3):
            client.get(url, **kw)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            client.get(url, **kw)
        prof.disable()
        print(f"\n=== {label} ({url}), {n} requests ===")
        stats = pstats.Stats(prof).strip_dirs()
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


_RERENDER: dict = {}


def install_rerender_hook(app) -> None:
    """Requests flagged X-Bench-Rerender: capture the page's template and context (flask.template_rendered)
    and, after the view, render that template again n times from that context, timing each."""
    from flask import request, template_rendered

    def on_render(sender, template, context, **extra):
        if request.headers.get("X-Bench-Rerender") and _RERENDER:
            _RERENDER["captured"] = (template, context)

    template_rendered.connect(on_render, app, weak=False)

    @app.after_request
    def _bench_rerender(resp):
        if request.headers.get("X-Bench-Rerender") and _RERENDER.get("captured"):
            template, context = _RERENDER["captured"]
            template.render(context)  # warm-up
            for _ in range(_RERENDER["n"]):
                t0 = time.perf_counter()
                template.render(context)
                _RERENDER["times"].append(time.perf_counter() - t0)
        return resp


def measure_bare(app, clients, actors: Actors, counter: QueryCounter, n: int) -> dict[str, Figure]:
    out = {}
    for role in ("liaison", "secretary", "reviewer", "api"):
        url = "/api/v1/_bench_bare" if role == "api" else "/_bench/bare"
        kw = {"headers": {"Authorization": f"Bearer {actors.token}"}} if role == "api" else {}
        client = clients[role]
        for _ in range(3):
            client.get(url, **kw)
        times = []
        for _ in range(n):
            with counter.counting():
                t0 = time.perf_counter()
                resp = client.get(url, **kw)
                times.append(time.perf_counter() - t0)
            assert resp.status_code == 200, (url, resp.status_code)
        fig = Figure("floor", f"bare route ({role})", median=statistics.median(times) * 1000, p95=pct(times, 0.95) * 1000,
                     queries=counter.n)
        out["_bare_api" if role == "api" else f"_bare_{role}"] = fig
    return out


# --- sweep, reports, export ------------------------------------------------------------------------------------------


def measure_sweep(app, counter: QueryCounter) -> list[Figure]:
    from coop.reminders.sweep import run_sweep

    figs = []
    with app.app_context():
        import sqlalchemy as sa

        from coop.extensions import db

        before = db.session.execute(sa.text("SELECT count(*) FROM notifications")).scalar()
        db.session.rollback()
        first = ("reminder sweep (first after load)" if before < 100
                 else f"reminder sweep (again; {before} notices existed)")
        for label in (first, "reminder sweep (steady state)"):
            with counter.counting():
                t0 = time.perf_counter()
                result = run_sweep()
                elapsed = time.perf_counter() - t0
            fig = Figure("job", label, unit="s", median=elapsed, target="< 3 s", ok=elapsed < 3, queries=counter.n,
                         note=str(result)[:60])
            figs.append(fig)
            print(f"  {label}: {elapsed:.2f} s, {counter.n} SQL, {result}")
    return figs


def _timed(fn, repeat: int):
    walls, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
    return min(walls), statistics.median(walls), result


def measure_reports(app, actors: Actors, counter: QueryCounter, year: int, month: int, repeat: int) -> list[Figure]:
    import sqlalchemy as sa

    from agreements.models import Agreement
    from coop.extensions import db
    from coop.orgs.models import Organization
    from coop.pdf import render_pdf
    from coop.reports import queries
    from coop.reports.pdf import render_report

    figs = []
    with app.app_context():
        upload_dir = app.config["UPLOAD_DIR"]
        agreement = db.session.get(Agreement, actors.report_agreement_id)
        render_report(queries.agreement_report_data(agreement, year, month), version=1, upload_dir=upload_dir)  # warm-up

        def agreement_report():
            db.session.expire_all()
            return render_report(queries.agreement_report_data(agreement, year, month), version=1, upload_dir=upload_dir)

        with counter.counting():
            agreement_report()
        q = counter.n
        best, med, rendered = _timed(agreement_report, repeat)
        weasy, weasy_med, _ = _timed(lambda: render_pdf(rendered.html), repeat)
        figs.append(Figure("report", f"agreement report PDF #{agreement.id} ({rendered.page_count} p)", unit="s",
                           median=best, p95=med, floor=weasy, target="< 0.5 s", ok=best < 0.5, queries=q,
                           note="best of runs; p95 column = median"))
        print(f"  agreement report: best {best:.3f} s, median {med:.3f} s, WeasyPrint alone {weasy:.3f} s, {q} SQL")

        root = db.session.execute(sa.select(Organization).where(
            Organization.parent_id.is_(None), Organization.name == "华夏能源集团党委")).scalar()
        n = max(1, min(repeat, 3))

        def committee_report():
            db.session.expire_all()
            return render_report(queries.committee_report_data(root, year, month), version=1, upload_dir=upload_dir)

        with counter.counting():
            t0 = time.perf_counter()
            data = queries.committee_report_data(root, year, month)
            data_s = time.perf_counter() - t0
        cq = counter.n
        best, med, rendered = _timed(committee_report, n)
        weasy, _wm, _ = _timed(lambda: render_pdf(rendered.html), n)
        figs.append(Figure("report", f"group committee report PDF ({rendered.page_count} p, {len(data.agreements)} pairings)",
                           unit="s", median=best, p95=med, floor=weasy, target="< 5 s", ok=best < 5, queries=cq,
                           note=f"data {data_s:.2f} s"))
        print(f"  group committee report: best {best:.3f} s, median {med:.3f} s, WeasyPrint alone {weasy:.3f} s, "
              f"data {data_s:.3f} s, {cq} SQL")
    return figs


def export_child(inst: Path, url: str, date_from: str | None) -> None:
    """(subprocess) The ledger export through the real route, as the group reviewer: time, rows, RSS growth."""
    import io

    import openpyxl  # noqa: F401 — imported before the baseline, as in a warm worker

    app = make_app(inst, url)
    from coop.auth.models import LoginSession, User
    from coop.auth.operations import _token_hash
    from coop.extensions import db
    import sqlalchemy as sa

    with app.app_context():
        user = db.session.execute(sa.select(User).where(User.username == "dangwei")).scalar_one()
        token = secrets.token_urlsafe(16)
        db.session.add(LoginSession(token_hash=_token_hash(token), user_id=user.id))
        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = token
    # Warm up on a tiny range (imports, templates, first connection), then take the baseline.
    client.get("/activities/export.xlsx?scope=committee&date_from=2099-01-01")
    base_cur, base_peak = rss_mb()
    url_path = "/activities/export.xlsx?scope=committee" + (f"&date_from={date_from}" if date_from else "")
    t0 = time.perf_counter()
    resp = client.get(url_path)
    elapsed = time.perf_counter() - t0
    _cur, peak = rss_mb()
    rows = None
    try:  # data rows = <row> elements of the sheet, less the header
        import zipfile

        with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
            sheet = next(n for n in zf.namelist() if n.startswith("xl/worksheets/sheet"))
            rows = zf.read(sheet).count(b"<row ") - 1
    except Exception:
        pass
    print(json.dumps({"status": resp.status_code, "seconds": elapsed, "rows": rows, "bytes": len(resp.data),
                      "baseline_mb": base_cur, "peak_mb": peak, "growth_mb": peak - max(base_cur, base_peak)}))


def measure_export(args, inst: Path, url: str) -> list[Figure]:
    results = {}
    for label, date_from in (("all", None), ("tenth", args.export_tenth_from)):
        proc = subprocess.run(
            [sys.executable, __file__, "--export-child", "--instance", args.instance, "--export-from", date_from or ""]
            + (["--database-url", args.database_url] if args.database_url else []),
            capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not line:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            raise SystemExit("export child failed")
        results[label] = json.loads(line[-1])
        r = results[label]
        print(f"  export ({label}): {r['rows']} rows, {r['seconds']:.2f} s, {r['bytes'] // 1024} KiB, "
              f"RSS {r['baseline_mb']:.0f} → peak {r['peak_mb']:.0f} MB (growth {r['growth_mb']:.0f} MB)")
    full, tenth = results["all"], results["tenth"]
    per_row_full = full["growth_mb"] / max(full["rows"] or 1, 1) * 1000
    grows = full["growth_mb"] > max(2 * tenth["growth_mb"], tenth["growth_mb"] + 30)
    return [
        Figure("export", f"Excel ledger export ({full['rows']} rows)", unit="s", median=full["seconds"], target="< 15 s",
               ok=full["seconds"] < 15 and full["status"] == 200, note=f"{full['bytes'] // 1024} KiB"),
        Figure("export", f"export memory growth: {full['rows']} vs {tenth['rows']} rows", unit="MB",
               median=full["growth_mb"], floor=tenth["growth_mb"], target="not growing with rows", ok=not grows,
               note=f"{per_row_full:.1f} MB per 1,000 rows"),
    ]


# --- output --------------------------------------------------------------------------------------------------------


def print_table(figs: list[Figure], title: str) -> None:
    print(f"\n{title}")
    head = (f"{'figure':46} {'median':>9} {'p95':>9} {'CPU':>7} {'target':>19} {'floor':>8} {'ratio':>6} {'SQL L/S':>9}"
            "  result  after a write")
    print(head)
    print("-" * len(head))
    for f in figs:
        unit = f.unit
        fmt = (lambda v: "—" if v is None else (f"{v:.1f}" if unit == "ms" else f"{v:.2f}" if unit == "s" else f"{v:.0f}"))
        sql = "" if f.queries is None else (f"{f.queries}/{f.queries_small}" if f.queries_small is not None else f"{f.queries}")
        result = "—" if f.ok is None else ("PASS" if f.ok else "FAIL")
        if f.note and f.note.startswith("HTTP"):
            result = f.note
        ratio = "—" if f.ratio is None else f"{f.ratio:.1f}×"
        cpu = f.extra.get("cpu_ms")
        cpu = "" if cpu is None else f"{cpu:.1f}"
        cold = f.extra.get("after_write_ms")
        cold = "" if cold is None else f"{cold:.1f}ms"
        print(f"{f.name[:46]:46} {fmt(f.median):>7}{unit:>2} {fmt(f.p95):>7}{unit:>2} {cpu:>7} {f.target:>19} "
              f"{fmt(f.floor):>8} {ratio:>6} {sql:>9}  {result:6}  {cold}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="/tmp/coop_bench", help="directory holding the large/ and small/ instances")
    parser.add_argument("--reuse", action="store_true", help="reuse instances already built there")
    parser.add_argument("--database-url", help="PostgreSQL URL of the large database (postgresql://…/coop_bench)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page / endpoint")
    parser.add_argument("--month", help="report / cockpit month, default: the last completed month")
    parser.add_argument("--repeat", type=int, default=5, help="runs per report")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-reports", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--only", help="comma-separated substrings of endpoint labels to measure")
    parser.add_argument("--show-sql", help="print the SQL of endpoints whose label contains this")
    parser.add_argument("--profile", help="cProfile the endpoints whose label contains this (large scale), print the top "
                                          "functions and stop")
    parser.add_argument("--export-tenth-from", default=None, help="date_from giving about a tenth of the rows")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--build-child", help=argparse.SUPPRESS)
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--export-from", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("COOP_SCHEDULER_MODE", "off")

    paths = instance_paths(args)
    if args.build_child:
        build_child(args.build_child, *paths[args.build_child])
        return 0
    if args.export_child:
        export_child(*paths["large"], args.export_from or None)
        return 0

    t_start = time.perf_counter()
    ensure_instances(args)
    from coop.formatting import local_today
    from coop.reports import queries as rq

    year, month = rq.parse_month(args.month) if args.month else rq.last_completed_month(local_today())
    if not args.export_tenth_from:
        # The last ~ tenth of three years of activities.
        start = local_today().replace(day=1)
        m = start.month - 3
        args.export_tenth_from = (start.replace(year=start.year - 1, month=m + 12) if m <= 0 else start.replace(month=m)).isoformat()
    import sqlalchemy as sa

    from coop.extensions import db

    # Small scale first: SQL statements per request on the normal demo, to compare with the large instance.
    small_counts: dict[str, int] = {}
    if not args.skip_small:
        inst, url = paths["small"]
        app = make_app(inst, url)
        install_rerender_hook(app)
        counter = QueryCounter()
        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", counter)
        actors = pick_actors(app, year, month)
        clients = sign_in(app, actors)
        print(f"\n[small] organization {actors.org_id}, liaison {actors.liaison.username}, secretary "
              f"{actors.secretary.username}, agreement {actors.agreement_id}, activity {actors.activity_id}")
        with app.app_context():
            from coop.reminders.sweep import run_sweep
            run_sweep()  # notifications exist at both scales
        for label, fig in measure_endpoints(app, clients, actors, counter, 1, year, month, counts_only=True).items():
            small_counts[label] = fig.queries
        with app.app_context():
            db.engine.dispose()

    inst, url = paths["large"]
    app = make_app(inst, url)
    install_rerender_hook(app)
    counter = QueryCounter()
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", counter)
        sizes = {t: db.session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                 for t in ("organizations", "users", "agreements", "activities", "activity_confirmations",
                           "attachments", "review_activity_evaluations", "notifications")}
        dialect = db.engine.dialect.name
    print(f"\n[large] {dialect}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + f"; month {year}-{month:02d}; "
          f"{os.cpu_count()} CPUs")
    figs: list[Figure] = []
    if not args.skip_sweep:
        figs += measure_sweep(app, counter)
    actors = pick_actors(app, year, month)
    clients = sign_in(app, actors)
    print(f"[large] organization {actors.org_id}, liaison {actors.liaison.username}, secretary "
          f"{actors.secretary.username}, agreement {actors.agreement_id}, activity {actors.activity_id}, "
          f"report agreement {actors.report_agreement_id}")
    bare = measure_bare(app, clients, actors, counter, args.requests)
    for f in bare.values():
        print(f"  {f.name:32} median {f.median:6.2f} ms, SQL {f.queries}")
    global endpoints
    if args.profile:
        profile_endpoints(app, clients, actors, args.profile, args.requests, year, month)
        return 0
    if args.only:
        wanted = [w.strip() for w in args.only.split(",")]
        all_endpoints = endpoints
        endpoints = lambda *a: [e for e in all_endpoints(*a) if any(w in e[0] for w in wanted)]  # noqa: E731
    pages = measure_endpoints(app, clients, actors, counter, args.requests, year, month, bare=bare)
    for label, fig in pages.items():
        fig.queries_small = small_counts.get(label)
        if fig.queries_small is not None and fig.queries is not None and fig.ok is not None:
            fig.extra["sql_independent"] = fig.queries <= fig.queries_small
        if args.show_sql and args.show_sql in label:
            print(f"\n--- SQL of {label} ({len(fig.extra.get('statements', []))}) ---")
            for st in fig.extra.get("statements", []):
                print("   ", " ".join(st.split())[:400])
    cur, peak = rss_mb()
    web_rss = Figure("process", "web process RSS after all page requests", unit="MB", median=cur, p95=peak,
                     target="< 300 MB", ok=peak < 300, note="p95 column = peak (VmHWM)")
    if not args.skip_reports:
        figs += measure_reports(app, actors, counter, year, month, args.repeat)
    if not args.skip_export:
        figs += measure_export(args, inst, url)

    rows = list(bare.values()) + list(pages.values()) + figs + [web_rss]
    print_table(rows, f"Issue 10 figures — {dialect}, {sizes['activities']} activities, {sizes['agreements']} agreements "
                      f"(ratio = median / floor; SQL L/S = statements per request at large / small scale)")
    sql_grows = [f.name for f in pages.values() if f.queries_small is not None and f.queries is not None
                 and f.queries > f.queries_small]
    print(f"\nSQL per request larger at large scale than at small: {', '.join(sql_grows) if sql_grows else 'none'}")
    print(f"total bench time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in f.__dict__.items() if k != "extra"}
                                               | {"extra": {k: v for k, v in f.extra.items() if k != "statements"}}
                                               for f in rows], ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
