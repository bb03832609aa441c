"""The compose federation on a real Docker engine, driven as docs/deployment.md says.

The tests run in order against one federation (see conftest.py): each step starts
from the state the previous one left, as an operator's session would. The guide's
`sh` blocks are run as written (only the host ports are mapped); the last test checks
that every block of the guide was run by some step.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import OKPKey

from service.audit.checkpoint import Checkpoint, verify_checkpoint
from service.witness.policy import Policy, evaluate, parse_policy
from tests.deploy.live.stack import (
    NODES,
    ROOT,
    Agency,
    Stack,
    audit_export,
    entries_by,
)
from tests.support.processes import poll

# The first test also builds the image and starts the federation (fixture time counts).
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

EXAMPLE = json.loads((ROOT / "docker" / "examples" / "statistics.json").read_text("utf-8"))
KZ_CLIENT = "kz-client-dev-token"
KZ_AUDITOR = "kz-auditor-dev-token"
UZ_AUDITOR = "uz-auditor-dev-token"
PARTIES = {"kz": "KZ:MIA", "kg": "KG:SRS", "uz": "UZ:MIA", "tj": "TJ:MIA"}
# Guide blocks no step runs, and why: the .env block sets passwords before a first start
# (the suite runs with the development defaults it documents next to it).
EXEMPT_BLOCKS = ("openssl rand",)
OPERATORS_DOC = ROOT / "docs" / "operators.md"
HARDENING_FLAGS = {
    "--user", "--tmpfs", "--cap-drop", "--security-opt", "--memory", "--cpus",
    "--pids-limit", "--log-driver", "--log-opt",
}  # fmt: skip
# The image, less its base image: 118 MB before the build was trimmed, 88 MB after.
IMAGE_LAYERS_LIMIT = 100 * 1024 * 1024


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every JSON object printed on its own line(s) in `text` (curl output, one per call)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    position = 0
    while (start := text.find("{", position)) != -1:
        value, position = decoder.raw_decode(text, start)
        found.append(value)
    return found


def uz_jwk(stack: Stack) -> OKPKey:
    jwks = httpx.get(f"{stack.url('uz')}/.well-known/jwks.json", timeout=10).json()
    [key] = [k for k in jwks["keys"] if k["kid"] == "UZ:MIA#2026-01"]
    return OKPKey.import_key(key)


def deliver_all(agency: Agency, ids: list[str], timeout: float) -> None:
    pending = set(ids)

    def all_delivered() -> bool:
        for message_id in list(pending):
            if agency.status(message_id)["status"] == "delivered":
                pending.discard(message_id)
        return not pending

    poll(all_delivered, timeout=timeout, interval=1.0, what=f"{len(ids)} messages delivered")


def started_at(stack: Stack, service: str) -> tuple[str, str]:
    state = stack.inspect(service)
    return state["Id"], state["State"]["StartedAt"]


# -- 1. start -------------------------------------------------------------------------
def test_up_builds_the_image_once_and_all_services_become_healthy(stack: Stack) -> None:
    dangling_before = stack.dangling_migex_images()
    stack.doc("docker compose up -d --build", timeout=900)
    stack.wait_healthy(["postgres", *NODES])

    # One image, built once: `up --build` leaves no unnamed images behind.
    assert stack.dangling_migex_images() - dangling_before == set()
    config = json.loads(stack.compose("config", "--format", "json").stdout)
    assert [name for name, svc in config["services"].items() if "build" in svc] == ["keys-init"]
    image_id = stack.docker("image", "inspect", "--format", "{{.Id}}", stack.image).strip()
    assert {stack.inspect(s)["Image"] for s in ("keys-init", *NODES)} == {image_id}


def test_keys_init_log_reports_four_keys(stack: Stack) -> None:
    out = stack.doc("docker compose logs keys-init")
    log = out.stdout + out.stderr
    assert "done: 4 node keys in place" in log
    assert {
        n: log.count(f"{n}: generated witness key {p}#witness-2026-01") for n, p in PARTIES.items()
    } == dict.fromkeys(NODES, 1)
    assert {n: log.count(f"{n}: witness policy written, 2 of 3") for n in NODES} == dict.fromkeys(
        NODES, 1
    )


def test_ps_lists_running_services_and_ps_a_the_exited_key_setup(stack: Stack) -> None:
    table = stack.doc("docker compose ps").stdout
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert not any("keys-init" in name for name in rows)
    for node in NODES:
        [row] = [r for name, r in rows.items() if name == f"{stack.project}-{node}-1"]
        assert "(healthy)" in row
    everything = stack.compose("ps", "-a").stdout
    [keys_init] = [line for line in everything.splitlines() if "keys-init" in line]
    assert "Exited (0)" in keys_init


def test_probes_answer_and_the_config_checks(stack: Stack) -> None:
    health, ready = json_lines(stack.doc("/v1/health    # the process is up").stdout)
    assert health == {"status": "ok"}
    assert (ready["status"], ready["party"]) == ("ready", "KZ:MIA")
    stack.doc("config check /etc/migex/node.yaml")


@pytest.mark.parametrize("node", ["kz", "postgres"])
def test_containers_run_hardened(stack: Stack, node: str) -> None:
    host = stack.inspect(node)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert min(host["Memory"], host["NanoCpus"], host["PidsLimit"]) > 0
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-file": "5", "max-size": "10m"},
    }
    if node == "postgres":
        assert sorted(host["CapAdd"]) == ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                                          "CAP_SETGID", "CAP_SETUID"]  # fmt: skip
        return
    assert host["ReadonlyRootfs"] is True
    probe = stack.compose(
        "exec", "-T", node, "python", "-c",
        "import os, pathlib\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'NoNewPrivs'))]\n"
        "print(os.getuid(), *[l.split()[1] for l in caps])\n"
        "try:\n    pathlib.Path('/etc/migex/probe').write_text('x')\n"
        "except OSError as exc:\n    print(exc.errno)\n",
    ).stdout.split()  # fmt: skip
    # uid 10001, no effective capability, no-new-privileges set, and EROFS on the root.
    assert probe == ["10001", "0000000000000000", "1", "30"]


def hardening_options() -> list[str]:
    """The run options of the `docker run` example in docs/operators.md that set how the
    container runs (user, filesystem, privileges, limits, logs), as written there."""
    text = OPERATORS_DOC.read_text("utf-8")
    [example] = [b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "docker run" in b]
    words = shlex.split(example.replace("\\\n", " "))
    options: list[str] = []
    for flag, value in itertools.pairwise(words):
        if flag in HARDENING_FLAGS:
            options += [flag, value]
    if "--read-only" in words:
        options.append("--read-only")
    assert {o for o in options if o.startswith("--")} == {*HARDENING_FLAGS, "--read-only"}
    return options


def test_image_default_command_is_reachable_with_a_loopback_configuration(
    stack: Stack,
) -> None:
    """`docker run -p` of the image with a configuration that says 127.0.0.1, as the sample
    does: the image's own default listens on every interface of the container."""
    config = (ROOT / "docker" / "config" / "tj.yaml").read_text("utf-8")
    config = re.sub(r"(?m)^listen: .*$", 'listen: {host: "127.0.0.1", port: 8000}', config)
    config = re.sub(r"(?m)^database_url: .*$", 'database_url: "sqlite:////tmp/node.db"', config)
    path = stack.work / "tj-loopback.yaml"
    path.write_text(config, "utf-8")
    path.chmod(0o644)
    port = stack.ports["kz-2"]  # free until the scale-out step
    name = f"{stack.project}-docker-run"
    stack.docker(
        "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8000",
        *hardening_options(),
        "-v", f"{stack.project}_tj-secrets:/run/secrets:ro",
        "-v", f"{stack.project}_public-keys:/etc/migex/public:ro",
        "-v", f"{path}:/etc/migex/node.yaml:ro",
        stack.image,
    )  # fmt: skip
    try:
        stack.wait_ready("kz-2", timeout=120)
        ready = httpx.get(f"http://127.0.0.1:{port}/v1/ready", timeout=10).json()
        assert ready["party"] == "TJ:MIA"
    finally:
        stack.docker("rm", "-f", name, check=False)


def test_image_adds_less_than_100_mb_to_its_base(stack: Stack) -> None:
    size = int(stack.docker("image", "inspect", "--format", "{{.Size}}", stack.image))
    base = int(
        stack.docker("image", "inspect", "--format", "{{.Size}}", "python:3.11-slim-bookworm")
    )
    print(f"image {size / 1e6:.0f} MB, base {base / 1e6:.0f} MB")
    assert size - base < IMAGE_LAYERS_LIMIT


# -- 3, 4. keys and a message from KZ to UZ ----------------------------------------------
def test_audit_key_and_jwks_are_published(stack: Stack) -> None:
    key = stack.doc("docker compose exec kz migex audit key").stdout.strip()
    assert re.fullmatch(r"migex/KZ:MIA\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+", key)
    jwks = json.loads(stack.doc("/.well-known/jwks.json").stdout)
    assert [k["kid"] for k in jwks["keys"]] == ["KZ:MIA#2026-01"]


@pytest.fixture(scope="module")
def walk(stack: Stack) -> dict[str, Any]:
    """The guide's message from KZ to UZ, sent once; its printed status."""
    out = stack.doc("migex send --config /etc/migex/node.yaml", timeout=120).stdout
    status: dict[str, Any] = json.loads(out)
    return status


def test_walk_through_message_is_delivered_with_a_verified_receipt(
    stack: Stack, walk: dict[str, Any]
) -> None:
    assert walk["status"] == "delivered"
    receipt = walk["receipt"]
    verified = jws.deserialize_compact(receipt["jws"], uz_jwk(stack), algorithms=["Ed25519"])
    payload = json.loads(verified.payload)
    assert payload == receipt["payload"]
    assert (payload["type"], payload["iss"], payload["aud"], payload["reply_to"]) == (
        "receipt",
        "UZ:MIA",
        "KZ:MIA",
        walk["id"],
    )
    assert payload["body"]["status"] == "accepted"


def test_walk_through_message_is_in_both_logs(stack: Stack, walk: dict[str, Any]) -> None:
    logs = stack.doc("docker compose logs kz uz")
    assert walk["id"] in logs.stdout

    out = stack.doc("/v1/audit/search?party=UZ:MIA&limit=5").stdout
    kz_search, uz_search = json_lines(out)
    uz_checkpoint = out[out.rindex("}") + 1 :].lstrip()
    found = {
        (node, item["entry"]["event"], item["entry"]["message_id"])
        for node, page in (("kz", kz_search), ("uz", uz_search))
        for item in page["entries"]
    }
    assert {("kz", "receipt.received", walk["id"]), ("uz", "message.accepted", walk["id"])} <= found
    assert uz_checkpoint.startswith("migex/UZ:MIA\n")

    uz = audit_export(stack.url("uz"), UZ_AUDITOR)
    [accepted] = [
        e["entry"] for e in uz if e["entry"]["event"] == "message.accepted"
        and e["entry"]["message_id"] == walk["id"]
    ]  # fmt: skip
    assert accepted["index"] == walk["receipt"]["payload"]["body"]["audit_index"]


def test_both_audit_logs_verify_offline(stack: Stack, walk: dict[str, Any]) -> None:
    out = stack.doc("migex audit key > audit/kz.vkey", timeout=240).stdout
    oks = [line for line in out.splitlines() if line.startswith("ok: ")]
    assert len(oks) == 2, out
    exported = (stack.work / "audit" / "kz-entries.jsonl").read_text("utf-8")
    assert walk["id"] in exported


# -- 4. the nodes witness each other ---------------------------------------------------
def witness_policy(stack: Stack, node: str) -> Policy:
    """The node's policy file as keys-init wrote it into the public keys volume."""
    text = stack.compose(
        "run", "--rm", "--no-deps", "--entrypoint", "cat", "keys-init",
        f"/etc/migex/public/{node}.witness-policy",
    ).stdout  # fmt: skip
    return parse_policy(text)


def witnessed_checkpoint(
    stack: Stack, node: str, policy: Policy, vkey: str, min_size: int
) -> tuple[Checkpoint, dict[str, int]]:
    """Poll the node's newest witnessed checkpoint until it covers `min_size` entries;
    return it, verified with the log's key, and its valid cosignatures by witness."""
    headers = {"Authorization": f"Bearer {node}-auditor-dev-token"}

    def covered() -> tuple[Checkpoint, dict[str, int]] | None:
        resp = httpx.get(
            f"{stack.url(node)}/v1/audit/checkpoint",
            params={"witnessed": "true"},
            headers=headers,
            timeout=10,
        )
        if resp.status_code == 404:
            return None  # no checkpoint meets the policy yet
        assert resp.status_code == 200, resp.text
        checkpoint = verify_checkpoint(resp.text, vkey, origin=f"migex/{PARTIES[node]}")
        if checkpoint.size < min_size:
            return None
        report = evaluate(policy, resp.text)
        assert report.invalid == ()
        assert report.met
        return checkpoint, report.cosigned

    return poll(covered, timeout=120, interval=0.5, what=f"{node}: witnessed checkpoint")


def test_the_four_nodes_witness_each_other_two_of_three(stack: Stack, walk: dict[str, Any]) -> None:
    kz = audit_export(stack.url("kz"), KZ_AUDITOR)
    [received] = [
        e["index"] for e in kz if e["entry"]["event"] == "receipt.received"
        and e["entry"]["message_id"] == walk["id"]
    ]  # fmt: skip
    covers = {"kz": received + 1, "uz": walk["receipt"]["payload"]["body"]["audit_index"] + 1}
    for node in NODES:
        policy = witness_policy(stack, node)
        others = sorted(n for n in NODES if n != node)
        vkey = stack.compose("exec", "-T", node, "migex", "audit", "key").stdout.strip()
        assert [log.vkey for log in policy.logs] == [vkey]
        assert sorted(policy.witnesses) == others
        assert {n: w.url for n, w in policy.witnesses.items()} == {
            n: f"http://{n}:8000/v1/witness" for n in others
        }
        witness_keys = {
            n: stack.compose("exec", "-T", n, "migex", "audit", "witness-key").stdout.strip()
            for n in others
        }
        assert {n: w.key.vkey for n, w in policy.witnesses.items()} == witness_keys
        group = policy.groups[policy.quorum]
        assert (group.threshold, sorted(group.members)) == (2, others)

        checkpoint, cosigned = witnessed_checkpoint(stack, node, policy, vkey, covers.get(node, 1))
        assert len(cosigned) >= 2, (node, checkpoint.size, cosigned)

        metrics = httpx.get(f"{stack.url(node)}/metrics", timeout=10).text
        [unwitnessed] = re.findall(r"(?m)^migex_witness_unwitnessed_seconds (\S+)$", metrics)
        assert float(unwitnessed) >= 0


def test_witnessed_checkpoint_verifies_offline_with_the_policy(stack: Stack) -> None:
    out = stack.doc("checkpoint?witnessed=true", timeout=240).stdout
    assert re.search(r"(?m)^ok: \d+ entries; root matches the signed checkpoint$", out), out
    [met] = [line for line in out.splitlines() if "witness policy" in line]
    assert re.fullmatch(
        r"ok: the checkpoint meets the witness policy: cosigned by "
        r"(kg, tj|kg, uz|tj, uz|kg, tj, uz)",
        met,
    ), out


# -- 5. backup and restore ------------------------------------------------------------
def test_postgres_backup_and_restore_as_documented(stack: Stack, walk: dict[str, Any]) -> None:
    at_backup = audit_export(stack.url("kz"), KZ_AUDITOR)
    stack.doc("pg_dump -U postgres --format=custom", timeout=240)
    dumps = {n: stack.work / "backup" / f"migex_{n}.dump" for n in NODES}
    assert all(path.stat().st_size > 0 for path in dumps.values())

    agency = Agency(stack.url("kz"), KZ_CLIENT)
    try:
        later = agency.submit(EXAMPLE)
        deliver_all(agency, [later], timeout=120)
        after_backup = audit_export(stack.url("kz"), KZ_AUDITOR)
        assert len(after_backup) > len(at_backup)
        # Witnesses cosign a checkpoint that holds the message sent after the backup.
        [queued] = [
            e["index"] for e in after_backup if e["entry"]["event"] == "message.queued"
            and e["entry"]["message_id"] == later
        ]  # fmt: skip
        vkey = stack.compose("exec", "-T", "kz", "migex", "audit", "key").stdout.strip()
        _, cosigned = witnessed_checkpoint(
            stack, "kz", witness_policy(stack, "kz"), vkey, queued + 1
        )

        stack.doc("pg_restore -U postgres --create", timeout=240)
        stack.wait_ready("kz")
        restored = audit_export(stack.url("kz"), KZ_AUDITOR)
        # The restored log is the backup's, entry for entry; after it come only the
        # restarted node's `config.loaded` and records of auditors' reads. The message
        # sent after the backup is not in it.
        assert restored[: len(at_backup)] == at_backup
        tail = sorted(e["entry"]["event"] for e in restored[len(at_backup) :])
        assert tail in (["config.loaded"], ["audit.query", "config.loaded"]), tail
        assert later not in {e["entry"]["message_id"] for e in restored}
        assert agency.client.get(f"/v1/outbox/{later}").status_code == 404
        assert agency.status(walk["id"])["status"] == "delivered"
    finally:
        agency.close()

    # Those witnesses cosigned past the backup: they cosign nothing of the restored log.
    def refused_by_each() -> bool:
        metrics = httpx.get(f"{stack.url('kz')}/metrics", timeout=10).text
        failures = dict(
            re.findall(
                r'(?m)^migex_witness_consecutive_failures\{witness="(\w+)"\} (\S+)$', metrics
            )
        )
        return all(float(failures.get(w, 0)) >= 1 for w in cosigned)

    poll(refused_by_each, timeout=120, interval=1.0, what=f"{sorted(cosigned)} refusing kz")


def test_keys_backup_and_restore_into_an_empty_volume_as_documented(stack: Stack) -> None:
    stack.doc('-czf - . > "backup/${n}-secrets.tar.gz"', timeout=240)
    archive = stack.work / "backup" / "kz-secrets.tar.gz"
    assert archive.stat().st_mode & 0o077 == 0
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [".", "./kz_kek", "./kz_signing_key", "./kz_witness_key"]
    key_digest = ["sha256sum", "/var/lib/migex/keys/kz/kz_signing_key"]
    before = stack.compose("run", "--rm", "--no-deps", "--entrypoint", key_digest[0],
                           "keys-init", key_digest[1]).stdout.split()[0]  # fmt: skip
    jwks_before = httpx.get(f"{stack.url('kz')}/.well-known/jwks.json", timeout=10).json()

    # The volume is lost: the node, the key set-up's container and the volume go.
    stack.compose("rm", "--stop", "--force", "kz", "keys-init")
    stack.docker("volume", "rm", f"{stack.project}_kz-secrets")

    stack.doc("-C /var/lib/migex/keys/kz -xzf - < backup/kz-secrets.tar.gz", timeout=300)
    stack.wait_healthy(["kz"])
    owner_mode = stack.compose("run", "--rm", "--no-deps", "--entrypoint", "stat", "keys-init",
                               "-c", "%u %a", "/var/lib/migex/keys/kz").stdout.split()  # fmt: skip
    assert owner_mode == ["10001", "700"]
    after = stack.compose("run", "--rm", "--no-deps", "--entrypoint", key_digest[0],
                          "keys-init", key_digest[1]).stdout.split()[0]  # fmt: skip
    assert after == before
    assert httpx.get(f"{stack.url('kz')}/.well-known/jwks.json", timeout=10).json() == jwks_before

    # UZ, which pinned KZ's key before, accepts what the restored key signs.
    agency = Agency(stack.url("kz"), KZ_CLIENT)
    try:
        deliver_all(agency, [agency.submit(EXAMPLE)], timeout=120)
    finally:
        agency.close()


# -- 6. restart one node while messages flow ----------------------------------------------
def test_restart_with_no_deps_while_messages_flow_loses_nothing(stack: Stack) -> None:
    others = {s: started_at(stack, s) for s in ("postgres", "kz", "kg", "tj")}
    uz_before = stack.container_id("uz")
    agency = Agency(stack.url("kz"), KZ_CLIENT)
    sent: list[str] = []
    stop = threading.Event()

    def flow() -> None:
        while not stop.is_set() or len(sent) < 30:
            sent.append(agency.submit(EXAMPLE))
            time.sleep(0.05)

    try:
        with ThreadPoolExecutor(1) as pool:
            flowing = pool.submit(flow)
            poll(lambda: len(sent) >= 5, timeout=60, what="messages flowing")
            stack.doc("docker compose up -d --no-deps --force-recreate uz", timeout=240)
            stack.wait_ready("uz")
            stop.set()
            flowing.result(timeout=300)
        deliver_all(agency, sent, timeout=300)
    finally:
        stop.set()
        agency.close()

    assert stack.container_id("uz") != uz_before
    assert {s: started_at(stack, s) for s in others} == others
    accepted = entries_by(audit_export(stack.url("uz"), UZ_AUDITOR), "message.accepted")
    assert {m: accepted.get(m) for m in sent} == dict.fromkeys(sent, 1)


# -- 8. two KZ processes on one database ------------------------------------------------
def submit_across(agencies: list[Agency], count: int) -> list[str]:
    """`count` messages, submitted at once, alternately to each process."""
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(agencies[i % len(agencies)].submit, EXAMPLE) for i in range(count)]
        return [f.result() for f in futures]


def check_one_log(stack: Stack, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """KZ's log is dense and holds each message once; UZ stored each once.
    Returns KZ's delivered attempts and UZ's repeated deliveries per message."""
    kz = audit_export(stack.url("kz"), KZ_AUDITOR)
    assert [line["index"] for line in kz] == list(range(len(kz)))
    queued = entries_by(kz, "message.queued")
    assert {m: queued.get(m) for m in ids} == dict.fromkeys(ids, 1)
    uz = audit_export(stack.url("uz"), UZ_AUDITOR)
    accepted = entries_by(uz, "message.accepted")
    assert {m: accepted.get(m) for m in ids} == dict.fromkeys(ids, 1)
    return entries_by(kz, "delivery.attempt", "delivered"), entries_by(uz, "message.redelivered")


def test_two_kz_processes_share_one_log_and_deliver_each_message_once(stack: Stack) -> None:
    stack.doc("docker compose --profile scale-out up -d", timeout=300)
    stack.wait_healthy(["kz", "kz-2"])
    agencies = [Agency(stack.url("kz"), KZ_CLIENT), Agency(stack.url("kz-2"), KZ_CLIENT)]
    try:
        ids = submit_across(agencies, 60)
        deliver_all(agencies[0], ids, timeout=300)
    finally:
        for agency in agencies:
            agency.close()
    delivered, repeated = check_one_log(stack, ids)
    assert {m: delivered.get(m) for m in ids} == dict.fromkeys(ids, 1)
    assert {m: repeated.get(m, 0) for m in ids} == dict.fromkeys(ids, 0)


def test_a_kz_process_killed_mid_load_loses_nothing(stack: Stack) -> None:
    agencies = [Agency(stack.url("kz"), KZ_CLIENT), Agency(stack.url("kz-2"), KZ_CLIENT)]
    accepted: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            message_id = agencies[i % 2].submit(EXAMPLE)
        except (httpx.HTTPError, AssertionError):
            return  # kz-2 is gone: the agency's request failed, nothing was accepted
        with lock:
            accepted.append(message_id)

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(one, i) for i in range(120)]
            poll(lambda: len(accepted) >= 30, timeout=120, what="load under way")
            stack.compose("kill", "kz-2")
            for future in futures:
                future.result()
        assert len(accepted) >= 60
        # Rows kz-2 had claimed (or leased as it queued them) wait for their lease (60 s)
        # before kz delivers them.
        deliver_all(agencies[0], accepted, timeout=420)
    finally:
        for agency in agencies:
            agency.close()
    assert stack.inspect("kz-2")["State"]["Running"] is False
    check_one_log(stack, accepted)


def test_kz_log_still_verifies_offline_after_scale_out(stack: Stack) -> None:
    audit = stack.work / "audit"
    stack.doc("migex audit key > audit/kz.vkey", timeout=240)
    entries = (audit / "kz-entries.jsonl").read_text("utf-8").splitlines()
    assert len(entries) > 200


# -- stop and remove ----------------------------------------------------------------
def test_down_v_removes_every_container_volume_and_network(stack: Stack) -> None:
    stack.doc("docker compose --profile scale-out down -v", timeout=300)
    assert stack.project_resources() == {"containers": [], "volumes": [], "networks": []}


def test_every_command_block_of_the_guide_was_run(stack: Stack) -> None:
    assert stack.docs.not_run(EXEMPT_BLOCKS) == []
