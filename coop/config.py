"""Configuration: built-in defaults, then instance/config.py, then COOP_* environment variables."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

# Reminder rules (coop/reminders): every number can be changed in instance/config.py or COOP_<KEY>.
REMINDER_DEFAULTS: dict = {
    "REMINDER_UPCOMING_DAYS": 3,  # a planned activity is announced this many days before
    "REMINDER_CONFIRM_AFTER_DAYS": 3,  # a partner's entry waits this long before the liaison is reminded
    "REMINDER_INACTIVE_DAYS": 30,  # an active agreement silent this long (repeats every as many days)
    "REMINDER_EXPIRING_DAYS": [30, 7],  # days before the end date
    "REMINDER_ESCALATE_SECRETARY_DAYS": 7,  # after the first reminder, the party's secretary hears of it
    "REMINDER_ESCALATE_COMMITTEE_DAYS": 14,  # after the first reminder, the committee reviewer hears of it
    "REMINDER_REPORT_RELEVANT_DAYS": 14,  # a "report ready" notice is news for this long
    "REMINDER_DIGEST_HOUR": 8,  # local hour digests go out
    "REMINDER_DIGEST_WEEKDAY": 0,  # weekly digests: Monday
    "REMINDER_DEFAULT_EMAIL_MODE": "daily",  # for people who never opened their preferences
    "REMINDER_DEFAULT_QUIET_HOURS": "22:00-07:00",  # same; "" for none
    "REMINDER_CLAIM_LEASE_MINUTES": 10,  # a crashed sender's claimed e-mails are retried after this
    "REMINDER_MAX_ATTEMPTS": 5,  # SMTP failures before a delivery is marked failed
    "REMINDER_IMMEDIATE_MAX": 3,  # more immediate e-mails than this at once are sent as one summary
}

DEFAULTS: dict = {
    # Database. Empty means SQLite at instance/coop.sqlite3.
    "DATABASE_URL": "",
    "SQLITE_BUSY_TIMEOUT_MS": 30000,
    # Display
    "TIMEZONE": "Asia/Shanghai",
    "DEFAULT_LOCALE": "zh",
    "LOCALES": ["zh", "en"],
    # Public base URL used in e-mails, PDFs and QR codes.
    "BASE_URL": "http://127.0.0.1:5000",
    # Security
    "SECRET_KEY": "",  # empty: generated once into instance/secret_key  # nosec B105
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_IDLE_HOURS": 12,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCK_MINUTES": 15,
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "UPLOAD_MAX_FILE_BYTES": 10 * 1024 * 1024,
    "UPLOAD_MAX_ACTIVITY_BYTES": 30 * 1024 * 1024,
    # Mail: no MAIL_SERVER means messages go to instance/outbox/
    "MAIL_SERVER": "",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": "",
    "MAIL_PASSWORD": "",  # no default password  # nosec B105
    "MAIL_FROM": "党建共建平台 <noreply@localhost>",
    "MAIL_TIMEOUT": 20,
    # Scheduler (`flask scheduler`, or inside `flask serve`)
    "REPORTS_MONTHLY_HOUR": 2,
    "REMINDER_SWEEP_MINUTES": 15,
    "GC_THRESHOLDS": [10000, 50, 50],  # gc.set_threshold in each process (see app._tune_gc)
    "REPORTS_PROCESSES": 2,  # worker processes for a month's reports (1 = in-process)
    # Mail over TLS to a server with a private CA
    "MAIL_CA_FILE": "",
    # JSON API bearer tokens live this many days
    "API_TOKEN_DAYS": 30,  # a number of days  # nosec B105
    # Largest PDF the public verification page accepts
    "AGREEMENT_VERIFY_MAX_BYTES": 20 * 1024 * 1024,
    **REMINDER_DEFAULTS,
}

# Keys that are read from the environment as COOP_<KEY>; values are parsed as JSON when they look like it.
ENV_PREFIX = "COOP_"


def _parse_env(raw: str, default):
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, list):
        items = json.loads(raw) if raw.strip().startswith("[") else [p.strip() for p in raw.split(",") if p.strip()]
        return [int(i) for i in items] if default and isinstance(default[0], int) else items
    return raw


def load_config(app, overrides: dict | None = None) -> None:
    """Fill app.config from defaults, instance/config.py, COOP_* env vars, then explicit overrides."""
    app.config.update(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    for key, default in DEFAULTS.items():
        raw = os.environ.get(ENV_PREFIX + key)
        if raw is not None:
            app.config[key] = _parse_env(raw, default)
    # Conventional names work too, so PaaS-style deployments need no renaming.
    if os.environ.get("DATABASE_URL") and not os.environ.get(ENV_PREFIX + "DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if overrides:
        app.config.update(overrides)

    instance = Path(app.instance_path)
    app.config.setdefault("UPLOAD_DIR", str(instance / "uploads"))
    app.config.setdefault("ARCHIVE_DIR", str(instance / "archive"))
    app.config.setdefault("PKI_DIR", str(instance / "pki"))
    app.config.setdefault("OUTBOX_DIR", str(instance / "outbox"))
    app.config["MAIL_OUTBOX_DIR"] = app.config["OUTBOX_DIR"]

    url = app.config["DATABASE_URL"] or f"sqlite:///{instance / 'coop.sqlite3'}"
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    engine_options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if url.startswith("sqlite"):
        engine_options.setdefault("connect_args", {"timeout": app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000})
    else:
        engine_options.setdefault("pool_pre_ping", True)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options

    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _persistent_secret(instance / "secret_key")
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # tokens live as long as the session
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["DEFAULT_LOCALE"]
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]


def _persistent_secret(path: Path) -> str:
    """Read instance/secret_key, creating it (0600) on first run so sessions survive restarts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Several gunicorn workers may start at once: write a temp file and link it into place
        # atomically, so exactly one secret wins and nobody reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()
