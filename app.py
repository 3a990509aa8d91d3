"""The application factory: configuration, extensions, blueprints, CLI — nothing else."""
from __future__ import annotations

import importlib
import os

from flask import Flask

from coop.config import load_config
from coop.db import alembic_render_item

# Every domain package; each has views.py with `bp`, and may have cli.py with `register(app)`.
DOMAINS = (
    "coop.home",
    "coop.auth",
    "coop.orgs",
    "coop.audit",
    "agreements",
    "coop.activities",
    "coop.reminders",
    "coop.reports",
    "coop.review",
    "coop.api",
)


def create_app(overrides: dict | None = None, *, instance_path: str | None = None) -> Flask:
    """Build a configured app. `overrides` wins over every other configuration source (tests use it)."""
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("COOP_INSTANCE_PATH") or None,
        instance_relative_config=True,
        static_folder="static",
        template_folder="templates",
    )
    os.makedirs(app.instance_path, exist_ok=True)
    load_config(app, overrides)

    import coop.models  # noqa: F401 — every table registered before anything queries
    from coop import web
    from coop.extensions import babel, csrf, db, login_manager, migrate

    db.init_app(app)
    # Batch mode lets Alembic alter SQLite tables (it recreates them); compare_type catches type changes.
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"),
                     render_as_batch=True, compare_type=True, render_item=alembic_render_item)
    csrf.init_app(app)
    login_manager.init_app(app)
    _compile_translations(app)
    babel.init_app(app, locale_selector=web.select_locale, timezone_selector=web.select_timezone)
    web.init_app(app)

    for name in DOMAINS:
        views = importlib.import_module(f"{name}.views")
        app.register_blueprint(views.bp)
        try:
            cli = importlib.import_module(f"{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.cli":
                raise
        else:
            cli.register(app)

    from coop import commands

    commands.register(app)
    _tune_gc(app)
    return app


def _tune_gc(app: Flask) -> None:
    """Issue 10: Python's default thresholds run a full (generation 2) collection every few requests of a
    group-wide page, which traverses every long-lived object — the app, SQLAlchemy's mappers, the memoised
    figures — and doubled those pages' p95. Collect young objects less often (GC_THRESHOLDS), and move what
    start-up built into the permanent generation (a server process builds one app; tests build hundreds, whose
    cycles must stay collectable, so not under TESTING)."""
    import gc

    gc.set_threshold(*(int(n) for n in app.config["GC_THRESHOLDS"]))
    if not app.testing:
        gc.collect()  # start-up garbage is freed, not frozen
        gc.freeze()


def _compile_translations(app: Flask) -> None:
    """Build the English catalogue from i18n/en/*.po when a fragment changed (see coop.i18n)."""
    from coop.i18n import COMPILED_DIR, compile_translations

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(COMPILED_DIR)
    try:
        compile_translations()
    except OSError:  # a read-only install keeps the catalogue it was built with
        app.logger.warning("could not compile translations into %s", COMPILED_DIR, exc_info=True)
