"""A small HTTP load client (threads, keep-alive, http.client): requests per second and errors on one URL.

    python bench/load.py --url http://127.0.0.1:8000/agreements/12 --cookie 'session=…' \
                         [--threads 8] [--seconds 20] [--warmup 2]

or let it sign in with a login session of its own on a bench instance (see bench_pages.py):

    python bench/load.py --instance /tmp/coop_bench/large --user g012_sj --path /agreements/146 \
                         --url http://127.0.0.1:8000 [--database-url postgresql://…]

Every thread keeps one connection open (HTTP/1.1 keep-alive, reconnecting when the server closes it) and
sends GETs back to back. Prints requests/s, errors (non-200 or exceptions), and latency median / p95 / p99.
Target (issue 10): ≥ 200 req/s with 0 errors on agreement detail, gunicorn with 2 workers.
"""
from __future__ import annotations

import argparse
import http.client
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def session_cookie(instance: str, database_url: str | None, username: str) -> str:
    """A signed Flask session cookie for a new server-side login session of `username`."""
    import sqlalchemy as sa
    from flask.sessions import SecureCookieSessionInterface

    from app import create_app
    from coop.auth.models import LoginSession, User
    from coop.auth.operations import _token_hash
    from coop.extensions import db

    overrides = {"DATABASE_URL": database_url} if database_url else {}
    app = create_app(overrides, instance_path=instance)
    with app.app_context():
        user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one()
        token = secrets.token_urlsafe(16)
        db.session.add(LoginSession(token_hash=_token_hash(token), user_id=user.id))
        db.session.commit()
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        value = serializer.dumps({"_user_id": token, "_fresh": True, "_permanent": True})
        return f"{app.config.get('SESSION_COOKIE_NAME', 'session')}={value}"


def run(url: str, headers: dict, threads: int, seconds: float, warmup: float) -> dict:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    stop_at = time.perf_counter() + warmup + seconds
    measure_from = time.perf_counter() + warmup
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def worker():
        conn = None
        mine, bad = [], []
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
                t0 = time.perf_counter()
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                elapsed = time.perf_counter() - t0
                if t0 >= measure_from:
                    if resp.status != 200:
                        bad.append(f"HTTP {resp.status}")
                    else:
                        mine.append(elapsed)
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as exc:  # noqa: BLE001 — every failure is an error to report
                if time.perf_counter() >= measure_from:
                    bad.append(f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    ok = len(latencies)
    lat = sorted(latencies)

    def q(p):
        return lat[min(len(lat) - 1, int(p * (len(lat) - 1)))] * 1000 if lat else float("nan")

    return {"requests": ok + len(errors), "ok": ok, "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "rps": ok / seconds, "median_ms": statistics.median(lat) * 1000 if lat else float("nan"),
            "p95_ms": q(0.95), "p99_ms": q(0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="full URL, or the base URL when --path is given")
    parser.add_argument("--path", help="path appended to --url")
    parser.add_argument("--cookie", help="Cookie header value")
    parser.add_argument("--instance", help="instance directory, to sign --user in")
    parser.add_argument("--database-url")
    parser.add_argument("--user", help="username to sign in (needs --instance)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=2)
    args = parser.parse_args()
    url = args.url.rstrip("/") + args.path if args.path else args.url
    headers = {"Connection": "keep-alive"}
    if args.cookie:
        headers["Cookie"] = args.cookie
    elif args.user:
        headers["Cookie"] = session_cookie(args.instance, args.database_url, args.user)
    r = run(url, headers, args.threads, args.seconds, args.warmup)
    print(f"{url}: {r['rps']:.0f} req/s over {args.seconds:.0f} s with {args.threads} threads; {r['ok']} ok, "
          f"{r['errors']} errors {r['error_kinds'] or ''}; latency median {r['median_ms']:.1f} ms, "
          f"p95 {r['p95_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
    target = r["rps"] >= 200 and r["errors"] == 0
    print(f"target ≥ 200 req/s with 0 errors: {'PASS' if target else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
