"""What callers send, checked in one place: sizes, depths, formats and ranges of request fields,
player text cleaned of control characters, and echoed input cut short.

Every check raises `BadInput` (a `ValueError`) with a short message that quotes at most
`ECHO_CHARS` of the offending value; the transport answers it with INVALID_ARGUMENT."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from maro.arena.errors import BadRequest

ECHO_CHARS = 48
"""At most this much of a caller's value is quoted back in an error message."""
MAX_PARAMS_BYTES = 16 * 1024
"""`params_json` larger than this is refused before it is parsed."""
MAX_PARAMS_DEPTH = 8
"""Nesting depth of `params_json` (objects and arrays) refused beyond this, before parsing."""
MAX_NAME_CHARS = 64
"""Display names (players, seats) are cut to this many characters after cleaning."""
MAX_ACTION_CHARS = 4096
"""An action text longer than this is refused; no game's format comes near it."""
MAX_SEATS = 32
"""Seats one CreateMatch may plan; every game's own bound is lower."""
MAX_UNIX_MS = 253_402_300_799_999
"""The last millisecond of the year 9999: timestamps beyond it (or below 0) are refused."""

_MATCH_ID = re.compile(r"[0-9a-f]{32}")
_GAME_ID = re.compile(r"[A-Za-z0-9_.:()=,\-]{1,128}")
_SEAT_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_WORD = re.compile(r"[A-Za-z0-9_.:@/\-]{1,128}")
_STATUSES = ("created", "running", "finished", "aborted")
# Bidirectional formatting characters: they reorder what a terminal or page shows (U+202E).
_BIDI = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


class BadInput(BadRequest, ValueError):
    """A request field that is malformed, too large or out of range; the message is for the caller."""


def shown(value: object, limit: int = ECHO_CHARS) -> str:
    """`value` as quoted in an error message: its repr, cut to `limit` characters."""
    text = repr(clean_text(value[: 2 * limit])) if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...' ({len(str(value))} chars)"


def clean_text(text: str) -> str:
    """Player text as the arena keeps and shows it: line breaks and tabs become spaces; other C0
    and C1 control characters, DEL and bidirectional overrides are removed."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            continue
        else:
            out.append(ch)
    return "".join(out)


def display_name(name: str) -> str:
    """A display name: cleaned, trimmed, at most MAX_NAME_CHARS characters."""
    return clean_text(name).strip()[:MAX_NAME_CHARS]


def match_id(value: str) -> str:
    if not _MATCH_ID.fullmatch(value):
        raise BadInput(f"match_id must be 32 lowercase hex digits, got {shown(value)}")
    return value


def game_id(value: str, *, optional: bool = False) -> str:
    if optional and not value:
        return value
    if not _GAME_ID.fullmatch(value):
        raise BadInput(f"game_id must be 1-128 letters, digits or _.:()=,- characters, got {shown(value)}")
    return value


def seat_token(value: str) -> str:
    if not _SEAT_TOKEN.fullmatch(value):
        raise BadInput(f"seat_token must be 1-128 URL-safe characters, got {shown(value)}")
    return value


def word(value: str, field: str, *, optional: bool = True) -> str:
    """A name of a bot, model or role: letters, digits and _.:@/- only, at most 128 characters."""
    if optional and not value:
        return value
    if value == "*" and field == "role":
        return value
    if not _WORD.fullmatch(value):
        raise BadInput(f"{field} must be 1-128 letters, digits or _.:@/- characters, got {shown(value)}")
    return value


def status(value: str) -> str:
    if value and value not in _STATUSES:
        raise BadInput(f"status must be empty or one of {', '.join(_STATUSES)}, got {shown(value)}")
    return value


def unix_ms(value: int, field: str) -> datetime | None:
    """A time filter in milliseconds since 1970; 0 means none."""
    if not 0 <= value <= MAX_UNIX_MS:
        raise BadInput(f"{field} must be 0 (none) or milliseconds from 1970 to 9999, got {value}")
    return datetime.fromtimestamp(value / 1000, UTC) if value else None


def params(text: str) -> dict[str, Any]:
    """`params_json` as a dict: empty means defaults; size and nesting are checked before parsing."""
    if not text:
        return {}
    size = len(text.encode())
    if size > MAX_PARAMS_BYTES:
        raise BadInput(f"params_json is {size} bytes; at most {MAX_PARAMS_BYTES}")
    if _depth(text) > MAX_PARAMS_DEPTH:
        raise BadInput(f"params_json nests deeper than {MAX_PARAMS_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and huge integers
        raise BadInput(f"params_json is not valid JSON: {shown(str(exc), 120)}") from None
    if not isinstance(value, dict):
        raise BadInput("params_json must be a JSON object")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _depth(text: str) -> int:
    """The deepest nesting of brackets outside strings: a linear scan, no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest
