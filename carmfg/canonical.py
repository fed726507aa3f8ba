"""Canonical serialisation of GMP content, the input of every hash we issue.

The audit chain and electronic signatures both hash "the content of a record". For a
hash to mean anything the serialisation must be stable: same content, same bytes,
whatever the dict order, the database backend or the Python version. Values are
first reduced to JSON-native types (Decimals keep their written precision as text,
datetimes become UTC ISO-8601 with microseconds), then dumped with sorted keys and
no insignificant white space.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64


def to_jsonable(value: Any) -> Any:
    """Reduce a value to the JSON-native form that is stored and hashed."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} is not a finite number")
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be part of a GMP record")
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"record keys must be text, not {type(key).__name__}")
            out[key] = to_jsonable(item)
        return out
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(item) for item in value), key=lambda v: json.dumps(v, sort_keys=True))
    # Model instances and other objects are referred to by primary key, never by repr.
    pk = getattr(value, "pk", None)
    if pk is not None:
        return to_jsonable(pk)
    raise TypeError(f"{type(value).__name__} cannot be part of a canonical record")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(value: Any) -> str:
    """SHA-256 (hex) of the canonical serialisation of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
