"""The compose federation of `docker-compose.yml` on a real Docker engine, for the live suite.

`Stack` runs the repository's compose file as docs/deployment.md does, with two
differences that keep a run from touching anything else on the engine:

- its own compose project name and image tag (`COMPOSE_PROJECT_NAME`, `MIGEX_IMAGE`,
  both read by the compose file), so volumes, containers and the image are the
  suite's own;
- an override file that moves the published host ports to free loopback ports and
  lets the image build's `RUN` steps use the host's network (the image is the same;
  the build then works wherever the host reaches PyPI and Debian, whether or not the
  engine routes its bridge network out). Nothing else is overridden.

`DocScripts` reads the `sh` code blocks of docs/deployment.md. The suite runs those
blocks as they are written (with the loopback ports mapped), and records which blocks
it ran, so that a command in the guide that no test runs is noticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_ports, poll

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

NODES = ("kz", "kg", "uz", "tj")
PUBLISHED = ("kz", "kg", "uz", "tj", "kz-2")
# Host ports in the compose file (and the guide's commands) of each published service.
DOC_PORTS = {"kz": 8001, "kg": 8002, "uz": 8003, "tj": 8004, "kz-2": 8005}
IMAGE_TITLE_LABEL = "org.opencontainers.image.title=migex"
PROJECT_LABEL = "com.docker.compose.project"


class CommandFailed(AssertionError):
    pass


def docker_unavailable() -> str | None:
    """Why the live suite cannot run here, or None when an engine and Compose v2 answer."""
    if shutil.which("docker") is None:
        return "no `docker` command on PATH"
    checks = (
        (["docker", "info", "--format", "{{.ServerVersion}}"], "no Docker engine answers"),
        (["docker", "compose", "version", "--short"], "the Compose v2 plugin is missing"),
    )
    for command, reason in checks:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{reason} ({exc})"
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            return f"{reason}: {detail[0][:200] if detail else result.returncode}"
    return None


def run(
    command: list[str] | str,
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 300,
    check: bool = True,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (a list, or a bash script with -euo pipefail); fail with its output."""
    argv = ["bash", "-euo", "pipefail", "-c", command] if isinstance(command, str) else command
    result = subprocess.run(
        argv,
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
        input=stdin,
    )
    done = subprocess.CompletedProcess(
        argv,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )
    if check and done.returncode != 0:
        raise CommandFailed(
            f"exit {done.returncode}: {command}\n--- stdout\n{done.stdout[-4000:]}"
            f"\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done


@dataclass
class DocScripts:
    """The `sh` code blocks of docs/deployment.md, and which of them the suite ran."""

    path: Path = DEPLOYMENT_DOC
    ran: set[str] = field(default_factory=set)

    def blocks(self) -> list[str]:
        text = self.path.read_text("utf-8")
        return [m.group(1) for m in re.finditer(r"^```sh\n(.*?)^```$", text, re.S | re.M)]

    def block(self, containing: str) -> str:
        """The one `sh` block that contains `containing`, as written in the guide."""
        found = [b for b in self.blocks() if containing in b]
        assert len(found) == 1, f"{len(found)} sh blocks of {self.path.name} contain {containing!r}"
        self.ran.add(found[0])
        return found[0]

    def not_run(self, exempt: Iterable[str]) -> list[str]:
        exempt = list(exempt)
        return [b for b in self.blocks() if b not in self.ran and not any(e in b for e in exempt)]


@dataclass
class Stack:
    """One compose project of the repository's compose file, with its own name and ports."""

    project: str
    image: str
    work: Path
    ports: dict[str, int]
    docs: DocScripts
    base_env: Mapping[str, str]

    @classmethod
    def create(cls, work: Path, suffix: str) -> Stack:
        ports = dict(zip(PUBLISHED, free_ports(len(PUBLISHED)), strict=True))
        stack = cls(
            project=f"migex-live-{suffix}",
            image=f"migex:live-{suffix}",
            work=work,
            ports=ports,
            docs=DocScripts(),
            base_env=os.environ,
        )
        stack.override.write_text(stack.override_text(), "utf-8")
        return stack

    @property
    def override(self) -> Path:
        return self.work / "compose.override.yml"

    def override_text(self) -> str:
        lines = [
            "# Written by the live deployment suite: host ports moved, build on the host network.",
            "services:",
            "  keys-init:",
            "    build:",
            "      network: host",
        ]
        for service, port in self.ports.items():
            lines += [f"  {service}:", f'    ports: !override ["127.0.0.1:{port}:8000"]']
        return "\n".join(lines) + "\n"

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in self.base_env.items()
            if not k.startswith(("COMPOSE_", "MIGEX_", "POSTGRES_"))
        }
        env.update(
            COMPOSE_PROJECT_NAME=self.project,
            COMPOSE_FILE=f"{COMPOSE_FILE}{os.pathsep}{self.override}",
            MIGEX_IMAGE=self.image,
        )
        return env

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    # -- commands --------------------------------------------------------------
    def localize(self, script: str) -> str:
        """The guide's script with its host ports mapped to this stack's."""
        for service, port in DOC_PORTS.items():
            script = script.replace(f"127.0.0.1:{port}", f"127.0.0.1:{self.ports[service]}")
        return script

    def doc(self, containing: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the guide's `sh` block that contains `containing`, in the work directory."""
        return run(
            self.localize(self.docs.block(containing)), env=self.env, cwd=self.work, timeout=timeout
        )

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["docker", "compose", *args],
            env=self.env,
            cwd=self.work,
            timeout=timeout,
            check=check,
            stdin=stdin,
        )

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run(
            ["docker", *args], env=self.env, cwd=self.work, timeout=timeout, check=check
        ).stdout

    # -- state -----------------------------------------------------------------
    def containers(self, *, all: bool = True) -> list[dict[str, Any]]:
        args = ["ps", "--format", "json"] + (["-a"] if all else [])
        out = self.compose(*args).stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            loaded: list[dict[str, Any]] = json.loads(out)
            return loaded
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def container_id(self, service: str) -> str:
        return self.compose("ps", "-a", "-q", service).stdout.strip()

    def inspect(self, service: str) -> dict[str, Any]:
        data = json.loads(self.docker("inspect", self.container_id(service)))
        assert isinstance(data, list)
        assert len(data) == 1
        found: dict[str, Any] = data[0]
        return found

    def wait_healthy(self, services: Iterable[str], timeout: float = 240) -> None:
        wanted = set(services)

        def healthy() -> bool:
            states = {c["Service"]: c.get("Health", "") for c in self.containers(all=False)}
            return all(states.get(s) == "healthy" for s in wanted)

        poll(healthy, timeout=timeout, interval=1.0, what=f"{sorted(wanted)} healthy")

    def wait_ready(self, service: str, timeout: float = 180) -> None:
        def ready() -> bool:
            try:
                return httpx.get(f"{self.url(service)}/v1/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        poll(ready, timeout=timeout, interval=0.5, what=f"{service} ready")

    def project_resources(self) -> dict[str, list[str]]:
        label = f"label={PROJECT_LABEL}={self.project}"
        found = {
            "containers": self.docker("ps", "-a", "-q", "--filter", label).split(),
            "volumes": self.docker("volume", "ls", "-q", "--filter", label).split(),
            "networks": self.docker("network", "ls", "-q", "--filter", label).split(),
        }
        return found

    def dangling_migex_images(self) -> set[str]:
        out = self.docker(
            "images", "-q", "--no-trunc", "--filter", "dangling=true",
            "--filter", f"label={IMAGE_TITLE_LABEL}",
        )  # fmt: skip
        return set(out.split())

    def remove(self) -> None:
        """Everything of this project, whatever state a failed test left it in."""
        self.compose(
            "--profile", "scale-out", "down", "-v", "--remove-orphans", "--timeout", "5",
            timeout=180, check=False,
        )  # fmt: skip
        self.docker("rmi", self.image, check=False)


class Agency:
    """The agency system of one node: queues messages through its client API."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def submit(self, message: Mapping[str, Any]) -> str:
        resp = self.client.post("/v1/outbox", json=dict(message))
        assert resp.status_code == 202, resp.text
        message_id: str = resp.json()["id"]
        return message_id

    def status(self, message_id: str) -> dict[str, Any]:
        resp = self.client.get(f"/v1/outbox/{message_id}")
        assert resp.status_code == 200, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def close(self) -> None:
        self.client.close()


def audit_export(base_url: str, token: str) -> list[dict[str, Any]]:
    resp = httpx.get(
        f"{base_url}/v1/audit/export",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


def entries_by(
    export: list[dict[str, Any]], event: str, outcome: str | None = None
) -> dict[str, int]:
    """Message id -> how many entries of `event` (and `outcome`) the export has for it."""
    counts: dict[str, int] = {}
    for line in export:
        entry = line["entry"]
        if entry["event"] == event and (outcome is None or entry["outcome"] == outcome):
            counts[entry["message_id"]] = counts.get(entry["message_id"], 0) + 1
    return counts
