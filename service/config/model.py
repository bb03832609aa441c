"""The node's configuration: the operator's YAML file, validated once at start.

`load_config` parses the file keeping line numbers, validates its shape with the
models below, resolves file paths, reads pinned partner keys, and cross-checks the
whole (agreements against rules, key ownership, overlapping rules, key files). Every
problem found is reported, each with the line to edit:

    kz.yaml:57: partners[0].rules[1].agreements[0]: unknown agreement 'kz-uz-2091'

Environment: MIGEX_CONFIG names the file (read by the CLI and `main.app`); MIGEX_DATABASE_URL replaces
`database_url`; MIGEX_PUBLIC_KEYS_DIR replaces the directory of every partner
`jwk_file`; MIGEX_SECRETS_DIR replaces the directory of every private key file, of
the identifier salt file, of the subject key file and of every KEK file.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from service.config.crosscheck import Finding, check_config
from service.config.keyfiles import check_key_files as check_node_key_files
from service.config.keyfiles import read_jwk_files
from service.config.types import (
    AgreementId,
    AgreementIds,
    Algs,
    Countries,
    Endpoint,
    FieldPaths,
    FilePath,
    Ident,
    IsoDate,
    KekId,
    Kid,
    Kids,
    Lax,
    MessageTypes,
    NoteKeyName,
    Party,
    Purposes,
    RetentionCategory,
    Role,
    Seconds,
    Sha256Hex,
    Text,
    TokenName,
)
from service.config.witnesscheck import check_witness_config
from service.config.yamlsource import (
    Loc,
    YamlDocument,
    YamlSourceError,
    parse_yaml,
    render_loc,
)
from service.partners.agreements import country_of
from service.partners.rules import Direction

__all__ = [
    "AgreementConfig",
    "AgreementRetentionConfig",
    "AttachmentStoreConfig",
    "AuditConfig",
    "ConfigError",
    "ConfigProblem",
    "ConsoleConfig",
    "DeliveryConfig",
    "LimitsConfig",
    "ListenConfig",
    "NodeConfig",
    "NodeSection",
    "PartnerAttachmentsConfig",
    "PartnerConfig",
    "PartnerKeyConfig",
    "PrivacyConfig",
    "RateLimitConfig",
    "RetentionConfig",
    "RuleConfig",
    "SigningKeyConfig",
    "TokenConfig",
    "WitnessConfig",
    "WitnessLogConfig",
    "WitnessedByConfig",
    "load_config",
    "render_sample_config",
]

ENV_DATABASE_URL = "MIGEX_DATABASE_URL"
ENV_PUBLIC_KEYS_DIR = "MIGEX_PUBLIC_KEYS_DIR"
ENV_SECRETS_DIR = "MIGEX_SECRETS_DIR"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
SAMPLE_TEMPLATE = "node.yaml.tmpl"

_TYPE_MESSAGES = {
    "missing": "required field is missing",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SigningKeyConfig(_Section):
    kid: Kid
    file: FilePath


class NodeSection(_Section):
    party: Party
    name: Text
    signing_keys: Annotated[tuple[SigningKeyConfig, ...], Lax, Field(min_length=1)]
    active_kid: Kid
    audit_kid: Kid
    published_kids: Kids | None = None
    witness_kid: Kid | None = None
    witness_name: NoteKeyName | None = None

    @property
    def country(self) -> str:
        return country_of(self.party)

    @property
    def cosigner_name(self) -> str:
        """The key name of this node's cosignatures: `witness_name`, else `migex/<party>/witness`."""
        return self.witness_name or f"migex/{self.party}/witness"


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network such as 10.0.0.0/8") from None
    return value


Network = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_network)]


class ListenConfig(_Section):
    host: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # Reverse proxies whose X-Forwarded-For names a request's source (refusals).
    trusted_proxies: Annotated[tuple[Network, ...], Lax] = ()


class LimitsConfig(_Section):
    max_message_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = 1_048_576
    clock_skew_seconds: Annotated[int, Field(ge=1, le=86400)] = 300
    max_json_depth: Annotated[int, Field(ge=2, le=1000)] = 32
    max_json_members: Annotated[int, Field(ge=1)] = 2_000_000
    max_observations: Annotated[int, Field(ge=1)] = 100_000
    request_timeout_seconds: Seconds = 30.0
    # The HTTP server's own bounds (service/httpserver.py), per process.
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024**2)] = 16 * 1024
    max_headers: Annotated[int, Field(ge=8, le=10_000)] = 100
    header_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    keep_alive_seconds: Annotated[int, Field(ge=1, le=3600)] = 15
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 512


class RefusalsConfig(_Section):
    """How many refusals of one unproven source get audit entries of their own."""

    per_second: Annotated[float, Field(gt=0, le=1_000_000)] = 1.0
    burst: Annotated[int, Field(ge=1, le=1_000_000)] = 60
    aggregate_seconds: Annotated[float, Field(ge=1, le=86400)] = 60.0
    ipv6_prefix: Annotated[int, Field(ge=16, le=128)] = 64


class AuditConfig(_Section):
    checkpoint_interval_seconds: Annotated[float, Field(ge=0, le=86400)] = 1.0
    page_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    identifier_salt_file: FilePath | None = None


class DeliveryConfig(_Section):
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 8
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 10
    backoff_initial_seconds: Seconds = 1.0
    backoff_max_seconds: Seconds = 600.0
    timeout_seconds: Seconds = 10.0
    lease_seconds: Seconds = 60.0


Days = Annotated[int, Field(ge=1, le=36500)]
CategoryDays = Annotated[dict[RetentionCategory, Days], Lax]


class AgreementRetentionConfig(_Section):
    """What an agreement says about keeping records: for all of them and/or per category."""

    agreement: AgreementId
    message_body_days: Days | None = None
    categories: CategoryDays = {}


class RetentionConfig(_Section):
    message_body_days: Days = 365
    purge_interval_seconds: Seconds = 3600.0
    categories: CategoryDays = {}
    agreements: Annotated[tuple[AgreementRetentionConfig, ...], Lax] = ()


class KekFileConfig(_Section):
    """A key-encryption key: 32 random bytes in a secret file (`migex privacy new-kek`)."""

    id: KekId
    file: FilePath


class PrivacyConfig(_Section):
    """Personal data: the secret that keys the disclosure index, and the key-encryption
    keys that seal stored bodies (docs/privacy.md)."""

    subject_key_file: FilePath | None = None
    kek_files: Annotated[tuple[KekFileConfig, ...], Lax] = ()
    # The KEK new bodies are sealed under; may be left out when there is one KEK.
    active_kek: KekId | None = None

    @property
    def effective_active_kek(self) -> str | None:
        if self.active_kek is not None:
            return self.active_kek
        return self.kek_files[0].id if len(self.kek_files) == 1 else None


class ConsoleConfig(_Section):
    """The browser console at /console (docs/console.md)."""

    enabled: bool = True
    session_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    # "auto": Secure when the request came over TLS (directly, or through a proxy whose
    # X-Forwarded-Proto the server trusts); "always": Secure on every response.
    secure_cookies: Literal["auto", "always"] = "auto"
    key_rotation_days: Annotated[int, Field(ge=1, le=36500)] = 365
    key_warning_days: Annotated[int, Field(ge=0, le=36500)] = 30


class CoverConfig(_Section):
    types: MessageTypes
    purposes: Purposes


class AgreementConfig(_Section):
    id: AgreementId
    title: Text
    parties: Countries
    signed: IsoDate
    in_force: IsoDate | None
    ends: IsoDate | None = None
    covers: Annotated[tuple[CoverConfig, ...], Lax, Field(min_length=1)]


class RateLimitConfig(_Section):
    per_second: Annotated[float, Field(gt=0, le=1_000_000)] = 10.0
    burst: Annotated[int, Field(ge=1, le=1_000_000)] = 20


class PartnerKeyConfig(_Section):
    kid: Kid
    jwk: dict[str, Any] | None = None
    jwk_file: FilePath | None = None
    algs: Algs | None = None
    revoked: bool = False
    revoked_at: IsoDate | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked or self.revoked_at is not None


class RuleConfig(_Section):
    id: Ident
    direction: Direction
    types: MessageTypes
    agreements: AgreementIds
    purposes: Purposes
    fields: FieldPaths | None = None


class DeliveryProofsConfig(_Section):
    """Protocol v1.1 with a partner: delivery proofs travel both ways (docs/protocol.md)."""

    agreement: AgreementId
    policy_file: FilePath


MediaType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$"),
]
Bytes = Annotated[int, Field(ge=1, le=2**53 - 1)]


class PartnerAttachmentsConfig(_Section):
    """Protocol v1.1 attachments with a partner, both ways (docs/protocol.md): the limits
    on what it may send this node, and what this node sends it. A partner without this
    block speaks v1 as far as attachments go: it may send none and is sent none."""

    max_count: Annotated[int, Field(ge=1, le=100)] = 10
    max_bytes: Bytes = 50 * 1024 * 1024
    max_total_bytes: Bytes = 200 * 1024 * 1024
    media_types: Annotated[tuple[MediaType, ...], Lax, Field(min_length=1)] = (
        "application/pdf",
        "image/jpeg",
        "image/png",
        "image/tiff",
    )


class AttachmentStoreConfig(_Section):
    """Where attachment bytes live (a directory; relative to this file) and how long
    a partner has to upload the files of a message."""

    directory: FilePath = Path("attachments")
    upload_window_seconds: Seconds = 86_400.0
    # The largest file the agency's systems may hand the node (POST /v1/files).
    max_file_bytes: Bytes = 2 * 1024**3


class PartnerConfig(_Section):
    party: Party
    name: Text
    endpoint: Endpoint
    keys: Annotated[tuple[PartnerKeyConfig, ...], Lax, Field(min_length=1)]
    rate_limit: RateLimitConfig = RateLimitConfig()
    rules: Annotated[tuple[RuleConfig, ...], Lax] = ()
    delivery_proofs: DeliveryProofsConfig | None = None
    attachments: PartnerAttachmentsConfig | None = None


class WitnessLogConfig(_Section):
    origin: NoteKeyName
    vkeys: Annotated[
        tuple[Annotated[str, StringConstraints(max_length=500)], ...], Lax, Field(min_length=1)
    ]


class WitnessConfig(_Section):
    """This node as a witness of other logs (C2SP tlog-witness); needs `node.witness_kid`."""

    partners: Annotated[tuple[Party, ...], Lax] | None = None
    logs: Annotated[tuple[WitnessLogConfig, ...], Lax] = ()
    rate_limit: RateLimitConfig = RateLimitConfig()


class WitnessedByConfig(_Section):
    """The witnesses of this node's log: a C2SP tlog-policy file and how to reach them."""

    policy_file: FilePath
    timeout_seconds: Seconds = 5.0
    backoff_initial_seconds: Seconds = 0.5
    backoff_max_seconds: Seconds = 30.0


class TokenConfig(_Section):
    name: TokenName
    role: Role
    sha256: Sha256Hex


class NodeConfig(_Section):
    """The validated configuration file. Paths are absolute once `load_config` returns."""

    node: NodeSection
    database_url: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    listen: ListenConfig = ListenConfig()
    limits: LimitsConfig = LimitsConfig()
    refusals: RefusalsConfig = RefusalsConfig()
    audit: AuditConfig = AuditConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    retention: RetentionConfig = RetentionConfig()
    attachments: AttachmentStoreConfig = AttachmentStoreConfig()
    console: ConsoleConfig = ConsoleConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    agreements: Annotated[tuple[AgreementConfig, ...], Lax] = ()
    partners: Annotated[tuple[PartnerConfig, ...], Lax] = ()
    tokens: Annotated[tuple[TokenConfig, ...], Lax] = ()
    witness: WitnessConfig = WitnessConfig()
    witnessed_by: WitnessedByConfig | None = None

    @property
    def party(self) -> str:
        return self.node.party

    @property
    def country(self) -> str:
        return self.node.country

    @property
    def effective_published_kids(self) -> tuple[str, ...]:
        """The kids published at /.well-known/jwks.json: `published_kids`, else (absent
        or empty) every signing key's."""
        return self.node.published_kids or tuple(k.kid for k in self.node.signing_keys)


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file, at a line and a path into the document."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration was refused; `str()` lists every problem, one per line."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


def load_config(
    path: Path, *, env: Mapping[str, str] | None = None, check_key_files: bool = True
) -> NodeConfig:
    """Load, validate and cross-check a configuration file; raises ConfigError."""
    environ: Mapping[str, str] = os.environ if env is None else env
    name = str(path)
    doc = _parse(path, name)
    data = doc.data
    override = environ.get(ENV_DATABASE_URL)
    if override and isinstance(data, dict):
        data = {**data, "database_url": override}
    try:
        cfg = NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(name, doc, _validation_findings(exc))) from None
    cfg = _resolve_paths(cfg, path.absolute().parent, environ)
    cfg, findings = read_jwk_files(cfg)
    findings.extend(check_config(cfg))
    findings.extend(check_witness_config(cfg))
    if check_key_files:
        findings.extend(check_node_key_files(cfg))
    if findings:
        raise ConfigError(_problems(name, doc, findings))
    return cfg


DEMO_PARTNER_ENDPOINT = "http://127.0.0.1:8001"


def render_sample_config(
    *,
    signing_key_file: Path,
    witness_key_file: Path,
    database_url: str,
    partner_jwk_file: Path,
    kek_file: Path,
    partner_endpoint: str = DEMO_PARTNER_ENDPOINT,
) -> str:
    """The single-node sample configuration (a KZ:MIA node and one partner), filled in."""
    text = resources.files("service").joinpath("sample", SAMPLE_TEMPLATE).read_text("utf-8")
    return Template(text).substitute(
        signing_key_file=json.dumps(str(signing_key_file)),
        witness_key_file=json.dumps(str(witness_key_file)),
        database_url=json.dumps(database_url),
        partner_jwk_file=json.dumps(str(partner_jwk_file)),
        kek_file=json.dumps(str(kek_file)),
        partner_endpoint=json.dumps(partner_endpoint),
    )


def _parse(path: Path, name: str) -> YamlDocument:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(name, None, "", "file is larger than 16 MiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"not UTF-8: {exc.reason}")]) from None
    try:
        return parse_yaml(text)
    except YamlSourceError as exc:
        raise ConfigError(ConfigProblem(name, i.line, "", i.message) for i in exc.issues) from None


def _validation_findings(exc: ValidationError) -> list[Finding]:
    findings: list[Finding] = []
    for error in exc.errors(include_url=False, include_context=False):
        loc: Loc = tuple(p for p in error["loc"] if not _is_schema_tag(p))
        kind = error["type"]
        if kind == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}" if loc else "unknown field"
        elif kind in _TYPE_MESSAGES:
            message = _TYPE_MESSAGES[kind]
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        findings.append((loc, message))
    return findings


def _is_schema_tag(part: str | int) -> bool:
    """Union and validator tags pydantic adds to an error location."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _problems(name: str, doc: YamlDocument, findings: Iterable[Finding]) -> list[ConfigProblem]:
    return [ConfigProblem(name, doc.line(loc), render_loc(loc), msg) for loc, msg in findings]


def _place(file: Path, base: Path, override_dir: str | None) -> Path:
    if override_dir:
        return Path(override_dir).absolute() / file.name
    return file if file.is_absolute() else base / file


def _placed_proofs(proofs: DeliveryProofsConfig | None, base: Path) -> DeliveryProofsConfig | None:
    """A partner's policy file, like `witnessed_by.policy_file`: relative to the file."""
    if proofs is None:
        return None
    return proofs.model_copy(update={"policy_file": _place(proofs.policy_file, base, None)})


def _resolve_paths(cfg: NodeConfig, base: Path, env: Mapping[str, str]) -> NodeConfig:
    """Make every file path absolute: relative to the file, or in an override directory."""
    secrets_dir = env.get(ENV_SECRETS_DIR)
    public_dir = env.get(ENV_PUBLIC_KEYS_DIR)
    signing = tuple(
        k.model_copy(update={"file": _place(k.file, base, secrets_dir)})
        for k in cfg.node.signing_keys
    )
    salt = cfg.audit.identifier_salt_file
    audit = cfg.audit.model_copy(
        update={"identifier_salt_file": None if salt is None else _place(salt, base, secrets_dir)}
    )
    subject_key = cfg.privacy.subject_key_file
    privacy = cfg.privacy.model_copy(
        update={
            "subject_key_file": None
            if subject_key is None
            else _place(subject_key, base, secrets_dir),
            "kek_files": tuple(
                k.model_copy(update={"file": _place(k.file, base, secrets_dir)})
                for k in cfg.privacy.kek_files
            ),
        }
    )
    partners = tuple(
        p.model_copy(
            update={
                "keys": tuple(
                    k
                    if k.jwk_file is None
                    else k.model_copy(update={"jwk_file": _place(k.jwk_file, base, public_dir)})
                    for k in p.keys
                ),
                "delivery_proofs": _placed_proofs(p.delivery_proofs, base),
            }
        )
        for p in cfg.partners
    )
    node = cfg.node.model_copy(update={"signing_keys": signing})
    witnessed_by = cfg.witnessed_by
    if witnessed_by is not None:
        policy = _place(witnessed_by.policy_file, base, None)
        witnessed_by = witnessed_by.model_copy(update={"policy_file": policy})
    store = cfg.attachments.model_copy(
        update={"directory": _place(cfg.attachments.directory, base, None)}
    )
    return cfg.model_copy(
        update={
            "node": node,
            "attachments": store,
            "audit": audit,
            "partners": partners,
            "witnessed_by": witnessed_by,
            "privacy": privacy,
        }
    )
