"""The message envelope: the JSON object every JWS payload holds (docs/protocol.md section 2).

`parse_payload` refuses a payload that is not strict JSON or not an object as
`malformed`, and an object whose members are missing, extra or of the wrong type
or format as `bad-envelope`, listing every error with its JSON Pointer path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.protocol import jsonstrict
from service.protocol.problems import Problem

ENVELOPE_MEMBERS = (
    "v",
    "id",
    "iss",
    "aud",
    "iat",
    "type",
    "agreement",
    "purpose",
    "reply_to",
    "body",
)
PROTOCOL_VERSION = 1
PARTY_RE = r"^[A-Z]{2}:[A-Z0-9][A-Z0-9-]{1,31}$"
# A key id as the nodes name them: a party id, '#' and a label of 1 to 64 characters.
KID_RE = PARTY_RE.removesuffix("$") + r"#[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
TYPE_RE = r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$"
AGREEMENT_RE = r"^[a-z0-9][a-z0-9-]{0,63}$"
PURPOSE_RE = r"^[a-z][a-z0-9-]{0,63}$"
MAX_TYPE_LENGTH = 64
# Largest integer every JSON implementation holds exactly (RFC 7493 section 2.2).
MAX_IAT = 2**53 - 1
# Refusals quote the sender's text sparingly: member names are cut to this length,
# and unknown members past this count are only counted.
MAX_NAME_SHOWN = 64
MAX_EXTRA_LISTED = 32

PARTY_PATTERN = re.compile(PARTY_RE)
UUID_PATTERN = re.compile(UUID_RE)
TYPE_PATTERN = re.compile(TYPE_RE)
AGREEMENT_PATTERN = re.compile(AGREEMENT_RE)
PURPOSE_PATTERN = re.compile(PURPOSE_RE)
_MEMBER_SET = frozenset(ENVELOPE_MEMBERS)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message's envelope; `body` is the type's content, checked elsewhere."""

    v: int
    id: str
    iss: str
    aud: str
    iat: int
    type: str
    agreement: str
    purpose: str
    reply_to: str | None
    body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The envelope as a JSON object, members in protocol order."""
        return {
            "v": self.v,
            "id": self.id,
            "iss": self.iss,
            "aud": self.aud,
            "iat": self.iat,
            "type": self.type,
            "agreement": self.agreement,
            "purpose": self.purpose,
            "reply_to": self.reply_to,
            "body": self.body,
        }


def is_party(value: object) -> bool:
    """Whether `value` is a party id such as `KZ:MIA`."""
    return isinstance(value, str) and PARTY_PATTERN.fullmatch(value) is not None


def is_message_id(value: object) -> bool:
    """Whether `value` is a lowercase hyphenated RFC 9562 UUID."""
    return isinstance(value, str) and UUID_PATTERN.fullmatch(value) is not None


def _matches(
    pattern: re.Pattern[str], max_length: int = MAX_TYPE_LENGTH
) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        return (
            isinstance(value, str)
            and len(value) <= max_length
            and pattern.fullmatch(value) is not None
        )

    return check


def _is_version(value: object) -> bool:
    return type(value) is int and value == PROTOCOL_VERSION


def _is_iat(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_IAT


def _is_reply_to(value: object) -> bool:
    return value is None or is_message_id(value)


def _is_body(value: object) -> bool:
    return isinstance(value, dict)


# Each member's check and the message given when it fails.
_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "v": (_is_version, f"must be the integer {PROTOCOL_VERSION}"),
    "id": (is_message_id, "must be a lowercase hyphenated UUID"),
    "iss": (is_party, "must be a party id such as KZ:MIA"),
    "aud": (is_party, "must be a party id such as KZ:MIA"),
    "iat": (_is_iat, f"must be an integer from 0 to {MAX_IAT} (Unix seconds)"),
    "type": (
        _matches(TYPE_PATTERN),
        f"must be a message type of at most {MAX_TYPE_LENGTH} characters, such as "
        "citizenship.verification-request",
    ),
    "agreement": (_matches(AGREEMENT_PATTERN), "must be an agreement id such as kz-uz-2019"),
    "purpose": (_matches(PURPOSE_PATTERN), "must be a purpose code such as statistics"),
    "reply_to": (_is_reply_to, "must be null or a lowercase hyphenated UUID"),
    "body": (_is_body, "must be a JSON object"),
}


def _pointer(name: str) -> str:
    return "/" + name[:MAX_NAME_SHOWN].replace("~", "~0").replace("/", "~1")


def envelope_errors(obj: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every envelope error of `obj`, as `{"path", "message"}` items; empty when valid.

    Unknown members are listed up to `MAX_EXTRA_LISTED`, then counted in one
    item at the root; each is named by at most `MAX_NAME_SHOWN` characters.
    """
    errors: list[dict[str, str]] = []
    for name, (check, message) in _CHECKS.items():
        if name not in obj:
            errors.append({"path": _pointer(name), "message": "required member is missing"})
        elif not check(obj[name]):
            errors.append({"path": _pointer(name), "message": message})
    extra = [name for name in obj if name not in _MEMBER_SET]
    errors.extend(
        {"path": _pointer(name), "message": "member is not allowed in the envelope"}
        for name in extra[:MAX_EXTRA_LISTED]
    )
    if len(extra) > MAX_EXTRA_LISTED:
        unlisted = len(extra) - MAX_EXTRA_LISTED
        errors.append({"path": "", "message": f"{unlisted} more members are not allowed"})
    return errors


def member_errors(values: Mapping[str, Any]) -> list[dict[str, str]]:
    """The errors of the given envelope members alone (e.g. a draft's `type`), each checked
    as `envelope_errors` checks it; unknown names are errors too."""
    errors: list[dict[str, str]] = []
    for name, value in values.items():
        check = _CHECKS.get(name)
        if check is None:
            errors.append(
                {"path": _pointer(name), "message": "member is not allowed in the envelope"}
            )
        elif not check[0](value):
            errors.append({"path": _pointer(name), "message": check[1]})
    return errors


def _bad_envelope(errors: list[dict[str, str]]) -> Problem:
    summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return Problem("bad-envelope", f"invalid envelope: {summary}{more}", extra={"errors": errors})


def parse_payload(payload: bytes, *, max_depth: int = 32, max_members: int = 2_000_000) -> Envelope:
    """Parse and check a JWS payload as an envelope."""
    obj = jsonstrict.loads(payload, max_depth=max_depth, max_members=max_members)
    if not isinstance(obj, dict):
        raise Problem("malformed", "payload is not a JSON object")
    errors = envelope_errors(obj)
    if errors:
        raise _bad_envelope(errors)
    return Envelope(
        v=obj["v"],
        id=obj["id"],
        iss=obj["iss"],
        aud=obj["aud"],
        iat=obj["iat"],
        type=obj["type"],
        agreement=obj["agreement"],
        purpose=obj["purpose"],
        reply_to=obj["reply_to"],
        body=obj["body"],
    )


def encode_payload(env: Envelope) -> bytes:
    """The envelope as compact UTF-8 JSON; `ValueError` if it would not pass `parse_payload`."""
    obj = env.to_dict()
    errors = envelope_errors(obj)
    if errors:
        raise ValueError(_bad_envelope(errors).detail)
    return jsonstrict.dumps(obj)
