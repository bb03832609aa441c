"""Real `migex serve` processes on loopback ports, for end-to-end and crash tests.

A `NodeProcess` is one node: its configuration file, a fixed port (chosen free once,
so partners can be configured with it and a restart comes back on the same address),
the environment it runs with, and a log file. Typical use::

    port = free_port()
    with NodeProcess("tj", config_path, port=port, env=env, log_dir=tmp) as tj:
        tj.start()                 # spawns, then polls /v1/ready until it answers 200
        ...
        tj.kill()                  # SIGKILL: a crash, nothing flushed
        tj.start()                 # same port, same database
        tj.stop()                  # SIGTERM, SIGKILL if it does not exit in time

`free_ports(n)` picks distinct free ports for several nodes at once;
`start(wait=False)` followed by `wait_ready()` starts them in parallel.
Waiting is always polling with a deadline (`poll`), never a fixed sleep. Every
`migex serve` output line goes to `<log_dir>/<name>.log`; when a node fails to
start or dies, the error quotes the end of that log.

The child environment is the parent's without any `MIGEX_*` variable, plus `env`:
a node sees exactly the overrides it is given (MIGEX_SECRETS_DIR, ...).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

import httpx

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


class NodeFailed(RuntimeError):
    """A node did not become ready, or exited when it should be running."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on now (bound to port 0, then released)."""
    [port] = free_ports(1, host)
    return port


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free TCP ports: all are held until all are chosen."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def poll(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call `check` until it returns something truthy; return that. Raise TimeoutError
    naming `what` if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def migex_command() -> list[str]:
    """The `migex` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "migex"
    if script.exists():
        return [str(script)]
    found = shutil.which("migex")
    if found:
        return [found]
    return [sys.executable, "-c", "from service.cli import app; app(prog_name='migex')"]


def child_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The parent's environment without MIGEX_* variables, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MIGEX_")}
    base.update(env or {})
    return base


class NodeProcess:
    """One `migex serve` process (see the module docstring)."""

    def __init__(
        self,
        name: str,
        config: Path,
        *,
        log_dir: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        host: str = LOOPBACK,
        workers: int = 1,
    ) -> None:
        self.name = name
        self.workers = workers
        self.config = config
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.env = dict(env or {})
        self.log_path = log_dir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- state -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle -------------------------------------------------------------------
    def start(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Spawn `migex serve`; with `wait`, return once /v1/ready answers 200."""
        if self.running:
            raise NodeFailed(f"{self.name} is already running (pid {self.pid})")
        self._reap()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        command = [
            *migex_command(),
            "serve",
            "--config",
            str(self.config),
            "--host",
            self.host,
            "--port",
            str(self.port),
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
        ]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_environment(self.env),
            start_new_session=True,  # signals to the test runner do not reach it
        )
        if wait:
            self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Poll GET /v1/ready until it answers 200; fail early if the process exits."""

        def ready() -> bool:
            if not self.running:
                raise NodeFailed(
                    f"{self.name} exited with {self._exit_code()} before it was ready:\n"
                    + self.log_tail()
                )
            try:
                return httpx.get(f"{self.url}/v1/ready", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            poll(ready, timeout=timeout, what=f"{self.name} ready at {self.url}", interval=0.1)
        except TimeoutError as exc:
            raise NodeFailed(f"{exc}\n{self.log_tail()}") from None

    def stop(self, *, timeout: float = 20.0) -> int | None:
        """SIGTERM (a graceful shutdown); SIGKILL if it has not exited after `timeout` s.
        Returns the exit code, or None if it was not running."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the process dies at once, as in a crash or power loss."""
        return self._signal(signal.SIGKILL, 10.0)

    def restart(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        """Stop (or kill) and start again on the same port; wait until ready."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start(timeout=timeout)

    def _signal(self, sig: signal.Signals, timeout: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10.0)
        code = proc.returncode
        self._reap()
        return code

    def _exit_code(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
        if self._proc is None and self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
