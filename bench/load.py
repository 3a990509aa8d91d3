"""A small HTTP load client (threads, keep-alive, http.client): requests per second and errors on one URL.

    python bench/load.py --url http://127.0.0.1:8000/agreements/12 --cookie 'session=…' \
                         [--threads 8] [--seconds 20] [--warmup 2]

or let it sign in with a login session of its own on a bench instance (see bench_pages.py):

    python bench/load.py --instance /tmp/coop_bench/large --user g012_sj --path /agreements/146 \
                         --url http://127.0.0.1:8000 [--database-url postgresql://…]

or start gunicorn itself on a bench instance, load it with wrk (when installed; else the client below),
and also print the workers' CPU time per request, then stop it:

    python bench/load.py --serve --instance /tmp/coop_bench/large --user g248_sj --path /agreements/500 \
                         [--workers 2] [--seconds 15] [--database-url postgresql://…]

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


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def serve_and_load(args, cookie: str) -> int:
    """gunicorn with --workers sync workers on a free port, loaded for --seconds; prints the figures."""
    import os
    import shutil
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    overrides = {"DATABASE_URL": args.database_url} if args.database_url else {}
    env = {**os.environ, "COOP_INSTANCE_PATH": str(Path(args.instance).resolve()), "COOP_SCHEDULER_MODE": "off"}
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                "--worker-tmp-dir", "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp",
                f"app:create_app({overrides!r})"]
    server = subprocess.Popen(gunicorn, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}{args.path}"
    try:
        for _ in range(100):
            time.sleep(0.2)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", args.path, headers={"Cookie": cookie})
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    break
                print(f"{url}: HTTP {status} — is --user allowed to see it?")
                return 1
            except OSError:
                continue
        else:
            print("gunicorn did not start:", server.stderr.read1(2000).decode(errors="replace") if server.stderr else "")
            return 1
        workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,  # nosec B603 B607
                                                  text=True).stdout.split()]
        wrk = shutil.which("wrk")
        if wrk:
            subprocess.run([wrk, "-t1", f"-c{args.threads}", f"-d{args.warmup:.0f}s", "-H", f"Cookie: {cookie}", url],  # nosec B603
                           capture_output=True)
            ticks0 = _cpu_ticks(workers)
            out = subprocess.run([wrk, "-t1", f"-c{args.threads}", f"-d{args.seconds:.0f}s", "--latency",  # nosec B603
                                  "-H", f"Cookie: {cookie}", url], capture_output=True, text=True).stdout
            ticks1 = _cpu_ticks(workers)
            import re as _re
            done = int(_re.search(r"(\d+) requests in", out)[1])
            rps = float(_re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
            bad = _re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            sock = _re.search(r"Socket errors: (.*)", out)
            errors = int(bad[1]) if bad else 0
            p50 = _re.search(r"50%\s+(\S+)", out)[1]
            p99 = _re.search(r"99%\s+(\S+)", out)[1]
            print(f"{url}: gunicorn {args.workers} sync workers, wrk -t1 -c{args.threads} -d{args.seconds:.0f}s: "
                  f"{rps:.0f} req/s, {done} requests, {errors} non-200{', socket errors ' + sock[1] if sock else ''}; "
                  f"latency median {p50}, p99 {p99}")
        else:
            r = run(url, {"Connection": "keep-alive", "Cookie": cookie}, args.threads, args.seconds, args.warmup)
            ticks0 = ticks1 = 0
            rps, done, errors = r["rps"], r["requests"], r["errors"]
            print(f"{url}: gunicorn {args.workers} sync workers, Python client ({args.threads} threads; install wrk for "
                  f"a lighter client): {rps:.0f} req/s, {errors} errors")
        if ticks1 > ticks0 and done:
            print(f"worker CPU per request: {(ticks1 - ticks0) / os.sysconf('SC_CLK_TCK') / done * 1000:.2f} ms "
                  f"({os.cpu_count()} CPUs shared with the load client)")
        ok = rps >= 200 and errors == 0
        print(f"target ≥ 200 req/s with 0 errors: {'PASS' if ok else 'FAIL'}")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="full URL, or the base URL when --path is given")
    parser.add_argument("--path", help="path appended to --url")
    parser.add_argument("--cookie", help="Cookie header value")
    parser.add_argument("--instance", help="instance directory, to sign --user in")
    parser.add_argument("--database-url")
    parser.add_argument("--user", help="username to sign in (needs --instance)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--serve", action="store_true", help="start gunicorn on --instance and load it (needs --user, --path)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for --serve")
    args = parser.parse_args()
    if args.serve:
        if not (args.instance and args.user and args.path):
            parser.error("--serve needs --instance, --user and --path")
        return serve_and_load(args, session_cookie(args.instance, args.database_url, args.user))
    if not args.url:
        parser.error("--url is required (or --serve)")
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
