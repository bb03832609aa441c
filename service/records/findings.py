"""What validation reports about a body: a field's JSON pointer and a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """A failing (or doubtful) field: `path` is a JSON pointer that starts with /body."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def escape_token(token: str | int) -> str:
    """One RFC 6901 reference token: ~ becomes ~0 and / becomes ~1."""
    return str(token).replace("~", "~0").replace("/", "~1")


def body_pointer(location: tuple[str | int, ...]) -> str:
    """The JSON pointer of a location inside the message body."""
    return "/body" + "".join("/" + escape_token(token) for token in location)
