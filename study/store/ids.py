"""Content ids: the short, stable hash that names run keys, data caches and encoder weights in the results folder.
A value is hashed in canonical JSON (sorted keys, no spaces), so equal configs give equal ids on every machine."""

from __future__ import annotations

import hashlib
import json


def canonical_json(obj) -> str:
    """`obj` as JSON with sorted keys and no spaces (values JSON cannot hold as their `str`)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj, n: int = 16) -> str:
    """The first `n` hex digits of the SHA-256 of `obj` (a string as it is, anything else as canonical JSON)."""
    text = obj if isinstance(obj, str) else canonical_json(obj)
    return hashlib.sha256(text.encode()).hexdigest()[:n]
