"""The `migex` command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperGroup


class _OneLineErrors(TyperGroup):
    """Every command: a file or directory argument that cannot be used (missing, a
    directory where a file is expected, unreadable, not a valid configuration or key)
    is reported in one line naming it, with exit status 1, never with a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = _file_error(exc)
            if message is None:
                raise
            typer.echo(message, err=True)
            raise typer.Exit(1) from None


def _file_error(exc: Exception) -> str | None:
    """The one-line message for a file argument's error; None for any other error."""
    from service.config import ConfigError
    from service.privacy.keks import KekRefused
    from service.protocol.keys import KeyFileError

    if isinstance(exc, KekRefused):
        return f"refused to start: {exc}"
    if isinstance(exc, ConfigError):
        # Several problems: one line each, under the heading.
        separator = " " if len(exc.problems) == 1 else "\n"
        return f"configuration refused:{separator}{exc}"
    if isinstance(exc, KeyFileError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    return None


app = typer.Typer(
    help="migex: exchange node for cross-border migration data.",
    no_args_is_help=True,
    cls=_OneLineErrors,
)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The audit log: key, export, offline verification.", no_args_is_help=True
)
schemas_app = typer.Typer(help="Published JSON Schemas.", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Bearer tokens for auditors, operators and clients.", no_args_is_help=True
)
retention_app = typer.Typer(help="Retention of stored message bodies.", no_args_is_help=True)
privacy_app = typer.Typer(
    help="Personal data: disclosures about a person, the subject key.", no_args_is_help=True
)
witness_app = typer.Typer(help="This node as a witness of partners' logs.", no_args_is_help=True)
for sub, name in (
    (keys_app, "keys"),
    (config_app, "config"),
    (db_app, "db"),
    (audit_app, "audit"),
    (schemas_app, "schemas"),
    (tokens_app, "tokens"),
    (retention_app, "retention"),
    (privacy_app, "privacy"),
    (witness_app, "witness"),
):
    app.add_typer(sub, name=name)

MAX_TEXT_ARGUMENT = 1024 * 1024
ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="MIGEX_CONFIG", help="The node's YAML configuration."),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option(help="A C2SP tlog-policy file: report whether the checkpoint meets it."),
]
CosignedOpt = Annotated[
    list[Path] | None,
    typer.Option(
        help="An earlier checkpoint as a witness cosigned it (repeatable): the export must "
        "reproduce it."
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _read_text(path: Path, what: str) -> str:
    """A small UTF-8 text file given as an argument (a checkpoint note, a key)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TEXT_ARGUMENT + 1)
    except OSError as exc:
        raise _fail(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > MAX_TEXT_ARGUMENT:
        raise _fail(f"{path}: not {what}: larger than {MAX_TEXT_ARGUMENT} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(f"{path}: not {what}: not UTF-8 text") from None


def _verifier_key(key: str) -> str:
    """--key: the verifier key itself, or @file holding it."""
    return _read_text(Path(key[1:]), "a verifier key").strip() if key.startswith("@") else key


def _directory(path: Path) -> Path:
    if not path.is_dir():
        raise _fail(f"{path}: not a directory")
    return path


# -- serve ----------------------------------------------------------------------
@app.command()
def serve(
    config: ConfigOpt,
    host: Annotated[
        str | None,
        typer.Option(envvar="MIGEX_LISTEN_HOST", help="Listen address (default from the file)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(envvar="MIGEX_LISTEN_PORT", help="Listen port (default from the file)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run migrations, then serve the node (uvicorn with uvloop and httptools)."""
    import logging
    import logging.config
    import shutil
    import tempfile

    import uvicorn

    from service.config import load_config
    from service.db import migrate
    from service.db.engine import create_engines
    from service.httpserver import HttpLimits, ensure_descriptors, protocol_factory
    from service.logs import install_process_hooks, log_config
    from service.observability.metrics import MULTIPROC_ENV
    from service.runtime import check_bodies, load_bodies

    cfg = load_config(config)
    limits = cfg.limits
    try:
        ensure_descriptors(limits.max_connections)
    except ValueError as exc:
        raise _fail(f"configuration refused: {exc}") from None
    # From here on every line on standard error is a JSON log line.
    logging.config.dictConfig(log_config())
    install_process_hooks()
    engines = create_engines(cfg.database_url)
    try:
        migrate.upgrade(engines.writer)
        # A KEK that cannot read the database refuses start here, in one line.
        check_bodies(cfg, engines, load_bodies(cfg))
    finally:
        engines.dispose()
    os.environ["MIGEX_CONFIG"] = str(config.resolve())
    metrics_dir: str | None = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Several processes: counters are summed across them through this directory,
        # which is removed when the server stops (SIGTERM and SIGINT included).
        metrics_dir = tempfile.mkdtemp(prefix="migex-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    bind_host = host or cfg.listen.host
    bind_port = port if port is not None else cfg.listen.port
    logging.getLogger("migex.serve").info(
        "migex %s listening on http://%s:%d", cfg.node.party, bind_host, bind_port
    )
    http_limits = HttpLimits(
        max_header_bytes=limits.max_header_bytes,
        max_headers=limits.max_headers,
        header_timeout=limits.header_timeout_seconds,
        max_connections=limits.max_connections,
    )
    try:
        uvicorn.run(
            "service.main:app_from_env",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            loop="uvloop",
            http=protocol_factory(http_limits),
            ws="none",
            log_config=log_config(),
            access_log=False,
            timeout_keep_alive=limits.keep_alive_seconds,
            timeout_graceful_shutdown=10,
            server_header=False,
            # The node names a request's source itself, trusting X-Forwarded-For only
            # from the configured listen.trusted_proxies (uvicorn would trust 127.0.0.1's).
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


# -- keys -----------------------------------------------------------------------
@keys_app.command("generate")
def keys_generate(
    kid: Annotated[str, typer.Option(help='Key id, "<party>#<label>", e.g. KZ:MIA#2026-01.')],
    out: Annotated[
        Path, typer.Option(help="Where to write the private key (PKCS#8 PEM, mode 0600).")
    ],
    kind: Annotated[str, typer.Option(help="ed25519 or p256.")] = "ed25519",
    jwk_out: Annotated[Path | None, typer.Option(help="Also write the public JWK here.")] = None,
) -> None:
    """Generate a signing key; print its public JWK."""
    from service.protocol.keys import SigningKey, generate_private_key, write_private_key

    if kind not in ("ed25519", "p256"):
        raise _fail("--kind must be ed25519 or p256")
    key_kind: Literal["ed25519", "p256"] = "ed25519" if kind == "ed25519" else "p256"
    if jwk_out is not None:
        # Before the key is written: a key without the JWK asked for would be half done.
        jwk_out.parent.mkdir(parents=True, exist_ok=True)
        if jwk_out.is_dir():
            raise _fail(f"{jwk_out}: is a directory")
    private = generate_private_key(key_kind)
    try:
        write_private_key(out, private)
    except FileExistsError:
        raise _fail(f"{out} exists; refusing to overwrite a key") from None
    # Other errors (no such directory, ...) are reported in one line by the app.
    jwk = SigningKey(kid, private).public().jwk()
    text = json.dumps(jwk, indent=2) + "\n"
    if jwk_out is not None:
        jwk_out.write_text(text)
    typer.echo(text, nl=False)


@keys_app.command("jwks")
def keys_jwks(config: ConfigOpt) -> None:
    """Print the JWK Set this node publishes."""
    from service.config import load_config
    from service.protocol.keys import jwks
    from service.runtime import load_keys

    cfg = load_config(config)
    keys = load_keys(cfg)
    published = (keys[kid].public() for kid in cfg.effective_published_kids)
    typer.echo(json.dumps(jwks(published), indent=2))


# -- config ---------------------------------------------------------------------
@config_app.command("check")
def config_check(
    paths: Annotated[list[Path], typer.Argument(help="Configuration files to check.")],
    no_key_files: Annotated[
        bool,
        typer.Option(
            "--no-key-files", help="Do not open private key files (e.g. before secrets exist)."
        ),
    ] = False,
) -> None:
    """Validate configuration files; print every problem with its line."""
    from service.config import ConfigError, load_config

    failed = False
    for path in paths:
        try:
            cfg = load_config(path, check_key_files=not no_key_files)
        except ConfigError as exc:
            failed = True
            [first, *others] = exc.problems
            if not others and first.line is None:
                # The file itself is unusable (missing, not UTF-8, ...): one line.
                typer.echo(f"{path}: refused: {first.message}", err=True)
            else:
                typer.echo(f"{path}: refused\n{exc}", err=True)
        except OSError as exc:
            failed = True
            typer.echo(f"{path}: cannot read: {exc.strerror}", err=True)
        else:
            typer.echo(f"{path}: ok ({cfg.node.party}, {len(cfg.partners)} partners)")
    if failed:
        raise typer.Exit(1)


# -- db -------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt) -> None:
    """Apply database migrations up to the current schema."""
    from service.config import load_config
    from service.db import migrate
    from service.db.engine import create_engines

    cfg = load_config(config, check_key_files=False)
    engines = create_engines(cfg.database_url)
    try:
        migrate.upgrade(engines.writer)
        typer.echo(f"database at revision {migrate.current_revision(engines.writer)}")
    finally:
        engines.dispose()


# -- schemas --------------------------------------------------------------------
@schemas_app.command("generate")
def schemas_generate(directory: Annotated[Path, typer.Argument()] = Path("schemas")) -> None:
    """Write the JSON Schemas and examples generated from the record models."""
    from service.records import schemas

    for written in schemas.write(directory):
        typer.echo(str(written))


@schemas_app.command("check")
def schemas_check(directory: Annotated[Path, typer.Argument()] = Path("schemas")) -> None:
    """Fail if the published schemas differ from the models."""
    from service.records import schemas

    drifted = schemas.check(_directory(directory))
    if drifted:
        raise _fail("schemas drifted from the models: " + ", ".join(drifted))
    typer.echo("schemas match the models")


# -- tokens ---------------------------------------------------------------------
@tokens_app.command("new")
def tokens_new(
    name: Annotated[str, typer.Option(help="Who holds the token.")],
    role: Annotated[str, typer.Option(help="auditor, operator, client or privacy.")],
) -> None:
    """Create a token: print it once, and the YAML line holding its hash."""
    from service.api.tokens import ROLES, hash_token, new_token

    if role not in ROLES:
        raise _fail(f"--role must be one of {', '.join(ROLES)}")
    token = new_token()
    typer.echo(f"token (give to {name}, shown once): {token}")
    typer.echo(f'tokens entry: {{name: "{name}", role: {role}, sha256: "{hash_token(token)}"}}')


# -- audit ----------------------------------------------------------------------
@audit_app.command("key")
def audit_key(config: ConfigOpt) -> None:
    """Print the checkpoint verifier key (C2SP note format)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.audit.checkpoint import log_origin
    from service.audit.note import verifier_key
    from service.config import load_config
    from service.runtime import load_keys

    cfg = load_config(config)
    key = load_keys(cfg)[cfg.node.audit_kid]
    if not isinstance(key.private, Ed25519PrivateKey):
        raise _fail("the audit key must be Ed25519")
    typer.echo(verifier_key(log_origin(cfg.node.party), key.private.public_key()))


@audit_app.command("witness-key")
def audit_witness_key(config: ConfigOpt) -> None:
    """Print this node's witness verifier key (C2SP tlog-cosignature, for partners' policies)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.config import load_config
    from service.runtime import load_keys
    from service.witness.cosignature import CosignerKey

    cfg = load_config(config)
    if cfg.node.witness_kid is None:
        raise _fail("this node has no witness key: set node.witness_kid")
    key = load_keys(cfg)[cfg.node.witness_kid]
    if not isinstance(key.private, Ed25519PrivateKey):
        raise _fail("the witness key must be Ed25519")
    typer.echo(CosignerKey(cfg.node.cosigner_name, key.private.public_key()).vkey)


@audit_app.command("export")
def audit_export(
    config: ConfigOpt,
    start: Annotated[int, typer.Option(min=0)] = 0,
    end: Annotated[int | None, typer.Option(min=0, help="Default: the tree size.")] = None,
) -> None:
    """Write entries [start, end) as JSON Lines to standard output, from the database."""
    from service.audit import queries, store
    from service.config import load_config
    from service.db.engine import create_engines

    cfg = load_config(config, check_key_files=False)
    engines = create_engines(cfg.database_url)
    try:
        with engines.reader.connect() as conn:
            size = store.read_head(conn).size
        out = sys.stdout.buffer
        for line in queries.export_lines(
            engines.reader, start, size if end is None else min(end, size)
        ):
            out.write(line)
        out.flush()
    finally:
        engines.dispose()


@audit_app.command("verify")
def audit_verify(
    export: Annotated[Path, typer.Option(help="JSON Lines export of the log from index 0.")],
    checkpoint: Annotated[Path, typer.Option(help="A signed checkpoint note.")],
    key: Annotated[str, typer.Option(help="Verifier key <name>+<hex id>+<base64>, or @file.")],
    policy: PolicyOpt = None,
    cosigned: CosignedOpt = None,
) -> None:
    """Recompute the tree from an export and check it against a signed checkpoint."""
    from service.audit.offline import verify_export

    vkey = _verifier_key(key)
    note = _read_text(checkpoint, "a checkpoint")
    with export.open("rb") as lines:
        report = verify_export(lines, note, vkey)
    if not report.ok:
        where = f" at entry {report.first_bad_index}" if report.first_bad_index is not None else ""
        raise _fail(f"FAILED{where}: {report.reason}")
    typer.echo(f"ok: {report.entries} entries; root matches the signed checkpoint")
    _witness_findings(note, vkey, policy, cosigned or [], export)


def _witness_findings(
    note: str, vkey: str, policy_file: Path | None, cosigned: list[Path], export: Path | None
) -> None:
    """Report the witness policy and earlier cosigned checkpoints; fail if any is not ok."""
    from service.config.witnesscheck import read_policy
    from service.witness.auditing import Finding, cosigned_findings, policy_finding
    from service.witness.policy import PolicyError

    try:
        policy = None if policy_file is None else read_policy(policy_file)
    except (OSError, PolicyError) as exc:
        raise _fail(f"cannot read the witness policy: {exc}") from None
    findings: list[Finding] = []
    if policy is not None:
        findings.append(policy_finding(policy, note))
    if cosigned and export is not None:
        notes = [(path.name, path.read_text()) for path in cosigned]
        try:
            findings += cosigned_findings(lambda: export.open("rb"), vkey, notes, policy)
        except ValueError as exc:
            raise _fail(f"FAILED: a cosigned checkpoint is not the log's: {exc}") from None
    for finding in findings:
        typer.echo(f"{'ok' if finding.ok else 'FAILED'}: {finding.text}")
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@audit_app.command("messages")
def audit_messages(
    config: ConfigOpt,
    export: Annotated[
        Path, typer.Option(help="JSON Lines export of the log from index 0, verified first.")
    ],
) -> None:
    """Check the stored messages against the log: bytes, digests, nothing missing.

    Bodies sealed at rest are opened with the configured KEKs only to hash them."""
    from service.attachments.store import FileStore
    from service.audit.stored import check_stored
    from service.config import load_config
    from service.db.engine import create_engines
    from service.runtime import load_bodies

    cfg = load_config(config, check_key_files=False)
    bodies = load_bodies(cfg)
    engines = create_engines(cfg.database_url)
    directory = Path(cfg.attachments.directory)
    store = FileStore(directory, bodies.sealer) if directory.is_dir() else None
    try:
        with export.open("rb") as lines:
            report = check_stored(engines.reader, lines, store=store, bodies=bodies)
    finally:
        engines.dispose()
    summary = (
        f"{report.messages} messages ({report.purged} with purged bytes, {report.unsent} "
        f"re-signed and not yet sent), {report.copies} signed copies and {report.files} "
        "attachments"
    )
    if report.ok:
        typer.echo(f"ok: {summary} agree with the log")
        return
    for finding in report.findings:
        typer.echo(finding, err=True)
    raise _fail(f"FAILED: {len(report.findings)} findings in {summary}")


@audit_app.command("prove")
def audit_prove(
    url: Annotated[str, typer.Option(help="The node's base URL.")],
    message_id: Annotated[str, typer.Option(help="The message id to prove.")],
    checkpoint: Annotated[Path, typer.Option(help="A signed checkpoint note of that node.")],
    key: Annotated[str, typer.Option(help="Verifier key, or @file.")],
    token: Annotated[str, typer.Option(envvar="MIGEX_TOKEN", help="Auditor bearer token.")],
    policy: PolicyOpt = None,
) -> None:
    """Fetch a message's audit entries and prove each is included under a checkpoint."""
    from service.audit.proving import prove_message

    vkey = _verifier_key(key)
    note = _read_text(checkpoint, "a checkpoint")
    try:
        lines = prove_message(url, token, message_id, note, vkey)
    except ValueError as exc:
        raise _fail(f"FAILED: {exc}") from None
    for line in lines:
        typer.echo(line)
    _witness_findings(note, vkey, policy, [], None)


@audit_app.command("prove-delivery")
def audit_prove_delivery(
    proof: Annotated[Path, typer.Argument(help="A delivery proof, FILE.tlog-proof.")],
    policy: Annotated[
        Path, typer.Option(help="C2SP tlog-policy file: the witnesses that count, the quorum.")
    ],
    key: Annotated[
        list[str] | None,
        typer.Option(
            help="The receiver's checkpoint verifier key, or @file (default: the policy's log lines)."
        ),
    ] = None,
) -> None:
    """Verify offline that a partner logged a delivered message, under a witnessed checkpoint."""
    from service.witness.policy import PolicyError, parse_policy
    from service.witness.tlogproof import TlogProofError, prove_delivery

    vkeys = [Path(k[1:]).read_text().strip() if k.startswith("@") else k for k in key or []]
    try:
        lines = prove_delivery(proof.read_bytes(), parse_policy(policy.read_bytes()), vkeys)
    except (PolicyError, TlogProofError) as exc:
        raise _fail(f"FAILED: {exc}") from None
    for line in lines:
        typer.echo(line)


# -- retention ------------------------------------------------------------------
@retention_app.command("purge")
def retention_purge(config: ConfigOpt) -> None:
    """Purge message bodies older than their retention period now, category by category;
    messages of a case under a legal hold stay; audit entries stay."""
    import time

    from service.config.build import retention_policy_from_config
    from service.exchange.retention import purge_sync

    node = _with_node(config)
    try:
        report = purge_sync(
            node.committer,
            now=time.time(),
            policy=retention_policy_from_config(node.config),
            store=node.store,
            bodies=node.bodies,
        )
    finally:
        node.close()
    typer.echo(json.dumps(report.as_dict(), indent=2))


def _with_node(config: Path) -> Any:
    """The node of a configuration file, for a command that runs one unit (close it)."""
    import time

    from service.config import load_config
    from service.runtime import build_node

    # A configuration that cannot be read or is refused is reported by the command
    # line's one handler for file errors (one line, naming the file).
    cfg = load_config(config)
    try:
        return build_node(cfg, clock=time.time, record=False)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _cli_user() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


CaseOpt = Annotated[str, typer.Option("--case", help="The case reference (agency file number).")]


@retention_app.command("hold")
def retention_hold(
    config: ConfigOpt,
    case: CaseOpt,
    reason: Annotated[str, typer.Option(help="Why the case is held (kept by the node).")],
) -> None:
    """Place a legal hold on a case: none of its messages is purged until released."""
    from service.exchange.holds import HoldUnit

    _run_unit(config, HoldUnit(case, _cli_user(), reason))


@retention_app.command("release")
def retention_release(config: ConfigOpt, case: CaseOpt) -> None:
    """Release a legal hold; the case's messages are purged once their period is over."""
    from service.exchange.holds import HoldUnit

    _run_unit(config, HoldUnit(case, _cli_user(), release=True))


@retention_app.command("holds")
def retention_holds(config: ConfigOpt) -> None:
    """List the legal holds in force."""
    from service.exchange.holds import active_holds

    node = _with_node(config)
    try:
        with node.engines.reader.connect() as conn:
            holds = active_holds(conn)
    finally:
        node.close()
    typer.echo(json.dumps({"holds": holds}, indent=2, ensure_ascii=False))


def _run_unit(config: Path, unit: Any) -> None:
    """Run one audited group-commit unit; print its answer as JSON, or fail with its problem."""
    from service.protocol.problems import Problem

    node = _with_node(config)
    try:
        done = node.committer.run_sync(unit)
    except Problem as problem:
        raise _fail(problem.detail) from None
    finally:
        node.close()
    typer.echo(json.dumps(done, indent=2, ensure_ascii=False))


# -- witness --------------------------------------------------------------------


@witness_app.command("reset-log")
def witness_reset_log(
    config: ConfigOpt,
    origin: Annotated[str, typer.Option(help="The log's origin line, e.g. migex/UZ:MIA.")],
    reason: Annotated[
        str, typer.Option(help="Why, on one line: kept in this node's audit log for auditors.")
    ],
) -> None:
    """Forget the checkpoint cosigned last of a log (restored from a backup, say), so that
    its next checkpoint is cosigned as a first one. Audited with the forgotten checkpoint."""
    from service.witness.reset import ResetUnit

    _run_unit(config, ResetUnit(origin, _cli_user(), reason))


# -- privacy --------------------------------------------------------------------
IdOpt = Annotated[list[str] | None, typer.Option(help="May be given more than once.")]


@privacy_app.command("disclosures")
def privacy_disclosures(
    config: ConfigOpt,
    iin: IdOpt = None,
    pinfl: IdOpt = None,
    pin: IdOpt = None,
    tj_id: IdOpt = None,
    other_id: IdOpt = None,
    document: Annotated[
        list[str] | None, typer.Option(help="A document number, any issuer.")
    ] = None,
    surname: Annotated[str | None, typer.Option(help="With --birth-date.")] = None,
    given_names: Annotated[str | None, typer.Option()] = None,
    birth_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD, with --surname.")] = None,
) -> None:
    """Which partners received or sent data about a person, when, under what, which fields.

    The query is audited (privacy.query) with the keyed digests it looked up, never a value.
    """
    from service.privacy.queries import NameQuery, SubjectQuery, ask_sync
    from service.protocol.problems import Problem

    schemes = (
        ("KZ-IIN", iin),
        ("UZ-PINFL", pinfl),
        ("KG-PIN", pin),
        ("TJ-ID", tj_id),
        ("OTHER", other_id),
    )
    names: tuple[NameQuery, ...] = ()
    if (surname is None) != (birth_date is None):
        raise _fail("give --surname and --birth-date together")
    if surname is not None and birth_date is not None:
        names = (NameQuery(surname, given_names, birth_date),)
    query = SubjectQuery(
        identifiers=tuple((scheme, v) for scheme, values in schemes for v in values or ()),
        documents=tuple(document or ()),
        names=names,
    )
    node = _with_node(config)
    try:
        found = ask_sync(
            node.subject_key, node.committer, node.engines.reader, query, asked_by=_cli_user()
        )
    except Problem as problem:
        raise _fail(problem.detail) from None
    finally:
        node.close()
    typer.echo(
        json.dumps(
            {
                "subjects": found.subjects,
                "disclosures": found.disclosures,
                "truncated": found.truncated,
                "audit_index": found.audit_index,
            },
            indent=2,
        )
    )


@privacy_app.command("new-key")
def privacy_new_key(
    path: Annotated[Path, typer.Argument(help="Where to write the subject key (mode 0600).")],
) -> None:
    """Write a fresh random subject key for `privacy.subject_key_file`; never overwrites."""
    _write_secret(path, 32)
    typer.echo(f"subject key written to {path}")


def _write_secret(path: Path, size: int) -> None:
    """Write `size` random bytes to a new file of mode 0600; never overwrites."""
    import secrets

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _fail(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(secrets.token_bytes(size))


@privacy_app.command("new-kek")
def privacy_new_kek(
    path: Annotated[Path, typer.Argument(help="Where to write the KEK (mode 0600).")],
) -> None:
    """Write a fresh random key-encryption key for `privacy.kek_files`; never overwrites."""
    from service.privacy.sealing import KEK_BYTES

    _write_secret(path, KEK_BYTES)
    typer.echo(f"key-encryption key written to {path}")


@privacy_app.command("rotate-kek")
def privacy_rotate_kek(
    config: ConfigOpt,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10000, help="Rows re-wrapped or sealed per commit.")
    ] = 500,
) -> None:
    """Re-wrap every stored body's and attachment file's data key under the active KEK,
    and seal bodies and files stored in the clear; in batches, each committed and audited
    (privacy.kek-rotated).

    Stopped at any point, run it again: it resumes with the rows and files still to do."""
    from service.attachments.store import FileStore
    from service.privacy.rotation import rotate

    node = _with_node(config)
    try:
        if node.bodies.sealer is None:
            raise _fail("no KEK is configured (privacy.kek_files): there is nothing to seal under")
        directory = Path(node.config.attachments.directory)
        store = FileStore(directory, node.bodies.sealer) if directory.is_dir() else None
        report = rotate(
            node.committer,
            node.engines.reader,
            node.bodies.sealer,
            operator=_cli_user(),
            batch_size=batch_size,
            after_batch=_test_hold_after(),
            store=store,
        )
    except ValueError as exc:
        raise _fail(f"rotation refused: {exc}") from None
    finally:
        node.close()
    typer.echo(json.dumps(report, indent=2))


def _test_hold_after() -> Any:
    """Tests only: with MIGEX_TEST_ROTATE_HOLD_AFTER=N, hang after the N-th committed
    batch, so that a test can kill the command at a known point."""
    import threading

    hold = os.environ.get("MIGEX_TEST_ROTATE_HOLD_AFTER")
    if not hold:
        return None

    def after_batch(batches: int) -> None:
        if batches == int(hold):
            typer.echo(f"holding after batch {batches}", err=True)
            threading.Event().wait()

    return after_batch


# -- send -----------------------------------------------------------------------
@app.command()
def send(
    file: Annotated[
        Path, typer.Option(help="JSON: a message body, or an object with body/to/type/...")
    ],
    to: Annotated[str | None, typer.Option(help="Receiving party, e.g. UZ:MIA.")] = None,
    msg_type: Annotated[str | None, typer.Option("--type", help="Message type.")] = None,
    agreement: Annotated[str | None, typer.Option(help="Agreement id.")] = None,
    purpose: Annotated[str | None, typer.Option(help="Purpose code.")] = None,
    reply_to: Annotated[str | None, typer.Option(help="Id of the message this answers.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Queue through this node's outbox.")
    ] = None,
    wait: Annotated[
        float, typer.Option(help="With --config: seconds to wait for delivery.")
    ] = 30.0,
    key: Annotated[
        Path | None, typer.Option(help="Without --config: private key to sign with.")
    ] = None,
    kid: Annotated[
        str | None, typer.Option(help="Without --config: the key's id, <party>#<label>.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Without --config: the receiving node's base URL.")
    ] = None,
    alg: Annotated[
        str | None, typer.Option(help="Ed25519 (default for Ed25519 keys), EdDSA or ES256.")
    ] = None,
) -> None:
    """Send one message: sign and POST it to a node (partners testing an integration),
    or, with --config, queue it in this node's outbox and wait for the partner's receipt."""
    from service.sending import read_draft

    try:
        draft = read_draft(
            file, to=to, msg_type=msg_type, agreement=agreement, purpose=purpose, reply_to=reply_to
        )
    except (ValueError, OSError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    if config is not None:
        _send_via_node(config, draft, wait)
    elif key is not None and kid is not None and url is not None:
        _send_direct(draft, key, kid, url, alg)
    else:
        raise _fail(
            "give --config (queue through a node) or --key, --kid and --url (sign and post)"
        )


def _send_direct(draft: Any, key: Path, kid: str, url: str, alg: str | None) -> None:
    import time

    from service.protocol.keys import load_signing_key
    from service.sending import post_signed, sign_draft

    signing = load_signing_key(key, kid)
    env, token = sign_draft(draft, signing, now=time.time(), alg=alg)
    status, result = post_signed(url, token)
    typer.echo(json.dumps({"status": status, "id": env.id, **result}, indent=2, ensure_ascii=False))
    if status not in (200, 201):
        raise typer.Exit(1)


def _send_via_node(config: Path, draft: Any, wait: float) -> None:
    import asyncio
    import time

    from service.config import load_config
    from service.exchange import inbox
    from service.exchange.outbound import OutboundRequest, queue_outbound
    from service.protocol.problems import Problem
    from service.runtime import build_node
    from service.sending import wait_for

    node = build_node(load_config(config), clock=time.time, record=False)
    try:
        req = OutboundRequest(
            draft.to, draft.type, draft.agreement, draft.purpose, draft.body, draft.reply_to
        )
        try:
            queued = asyncio.run(
                queue_outbound(node.outbound, node.committer, req, node.clock(), inline=True)
            )
        except Problem as problem:
            raise _fail(
                json.dumps({"refused": problem.document()}, indent=2, ensure_ascii=False)
            ) from None
        typer.echo(f"queued {queued.message_id} (audit index {queued.audit_index})", err=True)

        def status() -> dict[str, Any]:
            with node.engines.reader.connect() as conn:
                return inbox.outbound_status(conn, node.party, queued.message_id)

        final = wait_for(status, timeout=wait)
        typer.echo(json.dumps(final, indent=2, ensure_ascii=False))
        if final["status"] != "delivered":
            raise typer.Exit(1)
    finally:
        node.close()


# -- quickstart -------------------------------------------------------------------
@app.command()
def quickstart(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where keys, configuration and database go.")
    ] = Path("var/quickstart"),
    port: Annotated[int, typer.Option(help="Listen port.")] = 8000,
    partner_endpoint: Annotated[
        str,
        typer.Option(
            help="Base URL of the demo partner's node (UZ:MIA), where messages are delivered."
        ),
    ] = "http://127.0.0.1:8001",
) -> None:
    """Create development keys and a sample KZ:MIA configuration (once), then serve on SQLite.

    The options shape the configuration when it is first written; later runs reuse it
    (edit `node.yaml`, or remove it to write it again)."""
    from service.config import render_sample_config
    from service.privacy.sealing import KEK_BYTES
    from service.protocol.keys import SigningKey, generate_private_key, write_private_key

    keys = directory / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    keys.chmod(0o700)
    node_key = keys / "kz-dev-1.pem"
    witness_key = keys / "kz-witness-1.pem"
    demo_key = keys / "uz-demo.pem"
    demo_jwk = keys / "uz-demo.jwk.json"
    kek = keys / "kek-dev-1"
    for own in (node_key, witness_key):
        if not own.exists():
            write_private_key(own, generate_private_key("ed25519"))
    if not kek.exists():
        _write_secret(kek, KEK_BYTES)
    if not demo_key.exists():
        private = generate_private_key("ed25519")
        write_private_key(demo_key, private)
        demo_jwk.write_text(
            json.dumps(SigningKey("UZ:MIA#dev-1", private).public().jwk(), indent=2) + "\n"
        )
    config = directory / "node.yaml"
    if not config.exists():
        db = (directory / "migex.db").resolve()
        text = render_sample_config(
            signing_key_file=node_key.resolve(),
            witness_key_file=witness_key.resolve(),
            database_url=f"sqlite:///{db}",
            partner_jwk_file=demo_jwk.resolve(),
            kek_file=kek.resolve(),
            partner_endpoint=partner_endpoint,
        )
        config.write_text(text.replace("port: 8000", f"port: {port}"))
    typer.echo(
        f"configuration: {config}\n"
        f"demo partner UZ:MIA key: {demo_key} (kid UZ:MIA#dev-1)\n"
        f"key-encryption key (stored bodies are sealed under it): {kek}\n"
        "development tokens: kz-auditor-dev-token, kz-operator-dev-token, kz-client-dev-token",
        err=True,
    )
    serve(config=config, host="127.0.0.1", port=port, workers=1)


def main() -> None:  # pragma: no cover
    app()
