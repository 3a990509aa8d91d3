"""Periodic jobs: exactly one scheduler process per site, and jobs that fire on time without overlapping."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from coop.scheduling import (
    SCHEDULER_LOCK_KEY,
    JobSpec,
    SchedulerAlreadyRunning,
    acquire_scheduler_lock,
    build_scheduler,
    is_postgresql_url,
    libpq_url,
    run_scheduler_forever,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SQLITE_URL = "sqlite:///instance/coop.sqlite3"

# A child process that tries the lock once, says whether it won, and holds it until killed.
CONTENDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from coop.scheduling import acquire_scheduler_lock
    database_url, lock_path, key, start_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    while time.time() < start_at:  # line the contenders up so they really race
        time.sleep(0.001)
    lock = acquire_scheduler_lock(database_url, lock_path, lock_key=key)
    print("WON" if lock else "LOST", flush=True)
    if lock:
        time.sleep(300)
    """
)


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def start_contender(database_url: str, lock_path: Path, key: int, start_at: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CONTENDER, database_url, str(lock_path), str(key), str(start_at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=child_env(),
    )


def verdict(process: subprocess.Popen) -> str:
    line = process.stdout.readline().strip()
    assert line in ("WON", "LOST"), process.stderr.read()
    return line


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    process.stdout.close()
    process.stderr.close()


def race_then_kill_the_winner(database_url: str, lock_path: Path, key: int) -> None:
    contenders = [start_contender(database_url, lock_path, key, time.time() + 1.5) for _ in range(4)]
    try:
        verdicts = [verdict(p) for p in contenders]
        assert verdicts.count("WON") == 1, verdicts
        winner = contenders[verdicts.index("WON")]
        for loser in contenders:
            if loser is not winner:
                assert loser.wait(timeout=10) == 0

        # While the winner lives, nobody else gets the lock — not even this test process.
        assert acquire_scheduler_lock(database_url, lock_path, lock_key=key) is None

        os.kill(winner.pid, signal.SIGKILL)  # kill -9: no cleanup code runs in the holder
        winner.wait(timeout=10)
        deadline = time.monotonic() + 15
        while True:
            lock = acquire_scheduler_lock(database_url, lock_path, lock_key=key)
            if lock is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert lock is not None, "the lock was not released when its holder died"
        lock.release()
    finally:
        for process in contenders:
            kill(process)


# --- URLs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "is_pg", "libpq"),
    [
        ("postgresql+psycopg://coop:pw@db:5432/coop?sslmode=require", True, "postgresql://coop:pw@db:5432/coop?sslmode=require"),
        ("postgresql://coop@db/coop", True, "postgresql://coop@db/coop"),
        ("postgres://coop@db/coop", True, "postgresql://coop@db/coop"),
        ("postgresql+psycopg2://coop@db/coop", True, "postgresql://coop@db/coop"),
        ("sqlite:///instance/coop.sqlite3", False, None),
        ("", False, None),
    ],
)
def test_database_urls(url, is_pg, libpq):
    assert is_postgresql_url(url) is is_pg
    if libpq:
        assert libpq_url(url) == libpq


def test_lock_key_is_a_fixed_signed_bigint():
    assert SCHEDULER_LOCK_KEY == int.from_bytes(b"coopSchd", "big")
    assert -(2**63) <= SCHEDULER_LOCK_KEY < 2**63


# --- file lock (SQLite) ----------------------------------------------------------------------------------------


def test_file_lock_is_exclusive_and_released(tmp_path):
    lock_path = tmp_path / "run" / "scheduler.lock"
    first = acquire_scheduler_lock(SQLITE_URL, lock_path)
    assert first is not None and first.kind == "file" and first.still_held()
    assert lock_path.read_text().strip() == str(os.getpid())
    # flock conflicts between separate opens even inside one process, so this is a real second contender.
    assert acquire_scheduler_lock(SQLITE_URL, lock_path) is None
    first.release()
    first.release()  # twice is harmless
    assert not first.still_held()
    with acquire_scheduler_lock(SQLITE_URL, lock_path) as second:
        assert second is not None
    third = acquire_scheduler_lock(SQLITE_URL, lock_path)
    assert third is not None
    third.release()


def test_file_lock_two_processes_exactly_one_wins_and_kill_9_releases(tmp_path):
    race_then_kill_the_winner(SQLITE_URL, tmp_path / "scheduler.lock", SCHEDULER_LOCK_KEY)


# --- advisory lock (PostgreSQL) --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> str:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(libpq_url(POSTGRES_URL), connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


def random_key() -> int:
    # Tests use their own keys so they never fight a real scheduler pointed at the same database.
    return secrets.randbits(62)


def test_postgres_lock_two_processes_exactly_one_wins_and_kill_9_releases(postgres_url, tmp_path):
    race_then_kill_the_winner(postgres_url, tmp_path / "unused.lock", random_key())


def test_postgres_lock_is_held_on_a_dedicated_connection(postgres_url, tmp_path):
    import psycopg

    key = random_key()
    lock = acquire_scheduler_lock(postgres_url, tmp_path / "unused.lock", lock_key=key)
    assert lock is not None and lock.kind == "postgresql"
    assert not (tmp_path / "unused.lock").exists(), "PostgreSQL sites do not use the file"
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as observer:
        holders = observer.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (key & 0xFFFFFFFFFFFFFFFF,),
        ).fetchall()
        assert holders == [("coop-scheduler",)]
        assert observer.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0] is False
    lock.release()
    assert not lock.still_held()
    again = acquire_scheduler_lock(postgres_url, tmp_path / "unused.lock", lock_key=key)
    assert again is not None
    again.release()


def test_postgres_lock_survives_a_dropped_connection_only_if_nobody_took_it(postgres_url, tmp_path):
    import psycopg

    key = random_key()
    lock = acquire_scheduler_lock(postgres_url, tmp_path / "x.lock", lock_key=key)
    assert lock is not None and lock.still_held()
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:

        def terminate_holder() -> None:
            admin.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory'"
                " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                (key & 0xFFFFFFFFFFFFFFFF,),
            )
            time.sleep(0.2)

        # Connection killed, lock free: the holder notices and takes it back on a new connection.
        terminate_holder()
        assert lock.still_held()
        assert admin.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0] is False

        # Connection killed and someone else grabbed the lock meanwhile: the holder must learn it lost.
        terminate_holder()
        assert admin.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0] is True
        assert lock.still_held() is False
    lock.release()


# --- the scheduler -----------------------------------------------------------------------------------------------


def test_build_scheduler_applies_safe_job_options():
    def sweep():
        pass

    jobs = [
        JobSpec("reminders", sweep, "interval", {"minutes": 15}),
        JobSpec("monthly-reports", sweep, CronTrigger(day=1, hour=2, timezone="Asia/Shanghai"), misfire_grace_time=6 * 3600),
        JobSpec("reminders", sweep, "interval", {"minutes": 10}),  # same id: replaces, no duplicate
    ]
    scheduler = build_scheduler(jobs, timezone="Asia/Shanghai", blocking=True)
    assert isinstance(scheduler, BlockingScheduler)
    assert str(scheduler.timezone) == "Asia/Shanghai"
    assert isinstance(build_scheduler([], timezone="UTC", blocking=False), BackgroundScheduler)

    background = build_scheduler(jobs, timezone="Asia/Shanghai", blocking=False)
    background.start(paused=True)
    try:
        by_id = {job.id: job for job in background.get_jobs()}
        assert sorted(by_id) == ["monthly-reports", "reminders"]
        assert {(j.coalesce, j.max_instances) for j in by_id.values()} == {(True, 1)}
        assert by_id["reminders"].trigger.interval.total_seconds() == 600
        assert by_id["reminders"].misfire_grace_time == 15 * 60
        assert by_id["monthly-reports"].misfire_grace_time == 6 * 3600
        assert str(by_id["reminders"].trigger.timezone) == "Asia/Shanghai"
        assert by_id["monthly-reports"].next_run_time.day == 1
    finally:
        background.shutdown(wait=False)


def test_interval_job_fires_on_time_in_a_background_scheduler():
    fired: list[float] = []
    scheduler = build_scheduler(
        [JobSpec("tick", lambda: fired.append(time.monotonic()), "interval", {"seconds": 0.2})],
        timezone="Asia/Shanghai",
        blocking=False,
    )
    started = time.monotonic()
    scheduler.start()
    time.sleep(1.15)
    scheduler.shutdown(wait=True)
    assert 3 <= len(fired) <= 6, fired
    gaps = [b - a for a, b in zip(fired, fired[1:])]
    assert all(gap > 0.1 for gap in gaps), gaps  # never early, never doubled
    assert 0.15 < sum(gaps) / len(gaps) < 0.3, gaps
    assert 0.1 < fired[0] - started < 0.5  # first run one interval after start, not at once


def test_a_slow_job_never_overlaps_itself():
    running = 0
    most = 0
    runs = 0
    guard = threading.Lock()

    def slow_sweep():
        nonlocal running, most, runs
        with guard:
            running += 1
            most = max(most, running)
            runs += 1
        time.sleep(0.45)
        with guard:
            running -= 1

    scheduler = build_scheduler([JobSpec("slow", slow_sweep, "interval", {"seconds": 0.1})], timezone="UTC", blocking=False)
    scheduler.start()
    time.sleep(1.3)
    scheduler.shutdown(wait=True)
    assert most == 1
    assert 2 <= runs <= 3


# --- run_scheduler_forever -------------------------------------------------------------------------------------

SCHEDULER_PROCESS = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from coop.scheduling import JobSpec, run_scheduler_forever
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    ticks = Path(sys.argv[2])

    def tick():
        with ticks.open("a") as handle:
            handle.write("tick\\n")

    run_scheduler_forever(
        [JobSpec("tick", tick, "interval", {"seconds": 0.2})],
        database_url=sys.argv[3] if len(sys.argv) > 3 else "sqlite:///coop.sqlite3",
        lock_path=Path(sys.argv[1]),
        timezone="Asia/Shanghai",
        log=logging.getLogger("coop.scheduler"),
        lock_check_seconds=1.0,
        **({"lock_key": int(sys.argv[4])} if len(sys.argv) > 4 else {}),
    )
    """
)


def start_scheduler_process(lock_path: Path, ticks: Path, *postgres: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCHEDULER_PROCESS, str(lock_path), str(ticks), *postgres],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=child_env(),
    )


def stop_and_read(process: subprocess.Popen) -> str:
    process.kill()
    return process.communicate(timeout=10)[1]


def wait_for(predicate, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_scheduler_process_runs_jobs_refuses_a_second_copy_and_stops_on_sigterm(tmp_path):
    lock_path, ticks = tmp_path / "scheduler.lock", tmp_path / "ticks.txt"
    first = start_scheduler_process(lock_path, ticks)
    try:
        assert wait_for(lambda: ticks.exists() and ticks.read_text().count("tick") >= 3), stop_and_read(first)

        second = start_scheduler_process(lock_path, tmp_path / "second-ticks.txt")
        _, second_err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "另一个调度进程正在运行" in second_err
        assert not (tmp_path / "second-ticks.txt").exists()

        first.send_signal(signal.SIGTERM)
        _, first_err = first.communicate(timeout=30)
        assert first.returncode == 0, first_err
        assert "调度进程已启动" in first_err and "调度进程已停止" in first_err
        assert "Traceback" not in first_err
    finally:
        kill(first)

    count = ticks.read_text().count("tick")
    time.sleep(0.5)
    assert ticks.read_text().count("tick") == count, "no job runs after the process stopped"
    lock = acquire_scheduler_lock(SQLITE_URL, lock_path)
    assert lock is not None, "SIGTERM released the lock"
    lock.release()


def test_run_scheduler_forever_exits_with_a_clear_message_when_the_lock_is_taken(tmp_path, caplog):
    import logging

    lock_path = tmp_path / "scheduler.lock"
    held = acquire_scheduler_lock(SQLITE_URL, lock_path)
    try:
        with pytest.raises(SchedulerAlreadyRunning) as caught:
            run_scheduler_forever(
                [], database_url=SQLITE_URL, lock_path=lock_path, timezone="Asia/Shanghai", log=logging.getLogger("t")
            )
    finally:
        held.release()
    assert isinstance(caught.value, SystemExit)
    assert "另一个调度进程正在运行" in str(caught.value.code)
    assert "另一个调度进程正在运行" in caplog.text


def test_scheduler_process_stops_when_its_postgres_lock_is_taken_over(postgres_url, tmp_path):
    import psycopg

    key, ticks = random_key(), tmp_path / "ticks.txt"
    process = start_scheduler_process(tmp_path / "unused.lock", ticks, postgres_url, str(key))
    try:
        assert wait_for(lambda: ticks.exists() and ticks.read_text().count("tick") >= 2), stop_and_read(process)
        with psycopg.connect(libpq_url(postgres_url), autocommit=True) as rival:
            # Cut the scheduler's lock connection (a database restart, a network cut) and take the lock first.
            rival.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory'"
                " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                (key,),
            )
            # Poll tightly: the scheduler looks only once a second, so the rival gets there first.
            deadline = time.monotonic() + 5
            while not rival.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the terminated session never released the lock"
                time.sleep(0.002)
            _, err = process.communicate(timeout=30)
        assert process.returncode == 1, err
        assert "调度锁已丢失" in err and "调度进程已停止" in err
    finally:
        kill(process)
