"""Services a fault-injection test may stop and start: its own redis-server on a spare port, its own
throwaway PostgreSQL cluster, and worker.py processes. Never the shared PostgreSQL or Redis.

Used by tests/test_faults.py and benchmarks/faults.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, pause: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
    return predicate()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """redis-server on a spare port, without persistence (a restart loses every job, the worst case)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.directory = tempfile.mkdtemp(prefix="opsrelay-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(  # noqa: S603
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for(lambda: _port_open(self.port), 10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # as a crash: nothing saved
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir, on a spare port) that may be restarted."""

    def __init__(self):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="opsrelay-pg-"))
        self.data = self.directory / "data"

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists() and (os.geteuid() != 0 or shutil.which("runuser") is not None)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/opsrelay_faults"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)  # noqa: S603

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.directory}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 100\n"  # commits stay synchronous
            )
        self.up()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "opsrelay_faults")
        return self

    def up(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "log"), "-w", "-t", "60", "start")

    def down(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop", check=False)

    def restart(self, pause: float = 0.0) -> None:
        self.down()
        time.sleep(pause)
        self.up()

    def close(self) -> None:
        self.down()
        shutil.rmtree(self.directory, ignore_errors=True)


class Workers:
    """`count` worker.py processes with this environment; kill, terminate and count them."""

    def __init__(self, env: dict, count: int = 2, log_dir: Path | None = None):
        self.env = {**os.environ, **env}
        self.count = count
        self.processes: list[subprocess.Popen] = []
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="opsrelay-workers-"))

    def start(self) -> Workers:
        for _ in range(self.count):
            self.start_one()
        return self

    def start_one(self) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.processes)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "worker.py"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def ready(self, redis_url: str, timeout: float = 120.0) -> bool:
        """Every process has registered its RQ worker (startup takes seconds on a loaded machine)."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(redis_url)
        try:
            return wait_for(lambda: Worker.count(connection=connection) >= len(self.alive()) > 0, timeout, 0.25)
        finally:
            connection.close()

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.processes if p.poll() is None]

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for process in self.alive():
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
