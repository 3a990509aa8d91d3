"""The scheduler runs exactly once per site: a second `flask scheduler` refuses to start."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def scheduler_env(database_url, tmp_path):
    env = dict(os.environ)
    env.update({
        "COOP_DATABASE_URL": database_url,
        "COOP_INSTANCE_PATH": str(tmp_path / "inst"),
        "COOP_SECRET_KEY": "sched",
        "FLASK_APP": "app",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def test_second_scheduler_process_refuses_to_start(app, scheduler_env):
    flask = [sys.executable, "-m", "flask"]
    first = subprocess.Popen(flask + ["scheduler"], cwd=ROOT, env=scheduler_env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Wait until the first one holds the lock.
        deadline = time.time() + 30
        started = False
        lines = []
        while time.time() < deadline:
            line = first.stdout.readline()
            lines.append(line)
            if "调度进程已启动" in line:
                started = True
                break
            if first.poll() is not None:
                break
        assert started, "".join(lines)
        second = subprocess.run(flask + ["scheduler"], cwd=ROOT, env=scheduler_env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "另一个调度进程正在运行" in second.stdout + second.stderr
    finally:
        first.terminate()
        try:
            out, _ = first.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            first.kill()
            out, _ = first.communicate()
    assert first.returncode == 0, out
    assert "调度进程已停止" in out
