"""The media type of an attachment, detected from its bytes by a maintained detector
(puremagic's signature database), never from its file name."""

from __future__ import annotations

from typing import BinaryIO

import puremagic


def detected_media_types(stream: BinaryIO) -> frozenset[str]:
    """Every media type whose signature the bytes match (empty if none does).

    The detector reads only the head and the tail of the stream, so a file of any size
    is checked in constant memory. The stream is left at its start.
    """
    try:
        candidates = puremagic.magic_stream(stream)
    except (puremagic.PureError, ValueError):  # no signature matched, or no bytes
        candidates = []
    finally:
        stream.seek(0)
    return frozenset(c.mime_type.lower() for c in candidates if c.mime_type)


def matches_declared(stream: BinaryIO, declared: str) -> bool:
    """Whether the bytes are of the `declared` media type by their signature."""
    return declared in detected_media_types(stream)
