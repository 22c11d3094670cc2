"""The README's run command and curl example, and the Procfile's web process, on a fresh copy of the tree."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still booting
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


def start_dev_server(tree: Path, port: int, env: dict) -> subprocess.Popen:
    """The README's `.venv/bin/flask --app webapp dev`, on our venv and a free port."""
    return subprocess.Popen(  # noqa: S603
        [str(BIN / "flask"), "--app", "webapp", "dev", "--port", str(port)],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def fresh_tree(tmp_path):
    """The tracked files only: no instance/, no database, as after a clone."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout  # noqa: S607
    for name in files.splitlines():
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_readme_run_command_and_curl_example(fresh_tree):
    readme = (fresh_tree / "README.md").read_text()
    run_command = re.search(r"\*\*Run it\*\*.*?```sh\n(.*?)\n```", readme, re.S).group(1)
    assert run_command.endswith(".venv/bin/flask --app webapp dev")
    curl = re.search(r"## Fire an alert.*?```sh\n(curl .*?)\n```", readme, re.S).group(1)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "OPSRELAY_ENV"}}
    env["PYTHONUNBUFFERED"] = "1"
    server = start_dev_server(fresh_tree, port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/login", server)
        result = subprocess.run(  # noqa: S603
            ["bash", "-c", curl.replace("127.0.0.1:5000", f"127.0.0.1:{port}")],  # noqa: S607
            cwd=fresh_tree,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert '"new_events":1' in result.stdout, result.stdout + result.stderr
        time.sleep(2)  # the embedded worker delivers in the background
    finally:
        output = stop(server)

    password = re.search(r"^\s+password (\S+)$", output, re.M)
    assert password, output
    api_key = re.search(r"X-API-Key: (opsr_\S+)'", output)
    assert api_key, output
    assert "simulated SMS" in output and "TestAlert" in output

    # Log in as the README says and find the SMS on the dashboard (a second run keeps the account).
    server = start_dev_server(fresh_tree, port, env)
    try:
        wait_until_up(base + "/login", server)
        session = requests.Session()
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', session.get(base + "/login").text).group(1)
        response = session.post(
            base + "/login",
            data={"email": "admin@example.com", "password": password.group(1), "csrf_token": token},
            allow_redirects=False,
        )
        assert response.status_code == 302
        dashboard = session.get(base + "/").text
        assert "TestAlert" in dashboard and "simulated" in dashboard
        # The development API key printed by the first run still works in the second.
        verified = requests.get(base + "/api/v1/auth/verify", headers={"X-API-Key": api_key.group(1)}, timeout=10)
        assert verified.status_code == 200 and verified.json()["scope"] == "admin"
    finally:
        output = stop(server)
    assert "shown only once" not in output  # the password is printed on the first run only


def test_procfile_web_process_serves(fresh_tree):
    procfile = dict(line.split(": ", 1) for line in (fresh_tree / "Procfile").read_text().splitlines() if line)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(PATH=f"{BIN}:{env['PATH']}", PORT=str(free_port()), WEB_CONCURRENCY="1")
    subprocess.run(["bash", "-c", procfile["release"]], cwd=fresh_tree, env=env, check=True, capture_output=True)  # noqa: S603,S607
    web = subprocess.Popen(  # noqa: S603
        ["bash", "-c", "exec " + procfile["web"]],  # noqa: S607
        cwd=fresh_tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{env['PORT']}/healthz", web)
        assert requests.get(f"http://127.0.0.1:{env['PORT']}/readyz", timeout=5).json()["status"] == "ready"
    finally:
        stop(web)
