"""Schemas for state restored from files: checked field by field before it is applied.

A checkpoint carries plain data (JSON in the container's metadata) that ends
up as attributes of callbacks, random streams and the training cursor. None of
it is trusted: each restorer declares the fields it takes and their types
(`Int`, `Float`, `Array`, `ListOf`, `DictOf`, `Optional`), anything else is
refused, and JSON is parsed only after its nesting depth has been bounded (a
deeply nested document would otherwise end in `RecursionError`). Every
refusal is a `FileFormatError` naming the field; callers add the file.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from distkeras.saving.file_format import FileFormatError

MAX_JSON_DEPTH = 32
MAX_ITEMS = 1 << 20  # entries in one list or dict of restored state
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(field: str, expected: str, value: Any) -> FileFormatError:
    return FileFormatError(f"field {field!r}: expected {expected}. Received: {_short(value)}")


def json_depth(text: str) -> int:
    """The deepest nesting of `[`/`{` in JSON `text` (brackets inside strings ignored)."""
    stripped = _STRING.sub('""', text).encode("utf-8", "replace")
    b = np.frombuffer(stripped, dtype=np.uint8)
    opens = (b == ord("[")) | (b == ord("{"))
    closes = (b == ord("]")) | (b == ord("}"))
    delta = opens.astype(np.int64) - closes.astype(np.int64)
    return int(np.max(np.cumsum(delta), initial=0))


def loads_json(text: Any, field: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parses a JSON field of a file, refusing non-strings, bad JSON and deep nesting."""
    if not isinstance(text, str):
        raise _bad(field, "a JSON string", type(text).__name__)
    depth = json_depth(text)
    if depth > max_depth:
        raise FileFormatError(
            f"field {field!r}: JSON nested {depth} deep, above the limit of {max_depth}"
        )
    try:
        return json.loads(text)
    except ValueError as e:
        raise FileFormatError(f"field {field!r}: invalid JSON ({e})") from e


class Spec:
    """A type a restored value must have; `check` returns the value to set."""

    expected = "a value"

    def check(self, value: Any, field: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Int(Spec):
    """An integer (not a bool) in [min, max]."""

    def __init__(self, min: int = 0, max: int = 2**63 - 1):  # noqa: A002 - short names read best
        self.min, self.max = min, max
        self.expected = f"an integer in [{min}, {max}]"

    def check(self, value: Any, field: str) -> int:
        if isinstance(value, np.integer):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(field, self.expected, value)
        if not self.min <= value <= self.max:
            raise _bad(field, self.expected, value)
        return value


class Float(Spec):
    """A real number (ints kept as ints; inf and nan allowed, as Keras's initial `best`)."""

    expected = "a number"

    def check(self, value: Any, field: str) -> float:
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(field, self.expected, value)
        if isinstance(value, int) and not -(2**1023) < value < 2**1023:
            raise _bad(field, self.expected, value)  # beyond any float
        return value


class Str(Spec):
    """A string of at most `max_len` characters."""

    def __init__(self, max_len: int = 1 << 16):
        self.max_len = max_len
        self.expected = f"a string of at most {max_len} characters"

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise _bad(field, self.expected, value)
        return value


class Array(Spec):
    """A NumPy array (of a numeric dtype) taken from the file's arrays."""

    expected = "an array"

    def check(self, value: Any, field: str) -> np.ndarray:
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biufc":
            raise _bad(field, self.expected, type(value).__name__)
        return value


class Optional(Spec):
    """None or a value of `spec`."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.expected = f"None or {spec.expected}"

    def check(self, value: Any, field: str) -> Any:
        return None if value is None else self.spec.check(value, field)


class AnyOf(Spec):
    """A value of the first of `specs` that accepts it."""

    def __init__(self, *specs: Spec):
        self.specs = specs
        self.expected = " or ".join(s.expected for s in specs)

    def check(self, value: Any, field: str) -> Any:
        for spec in self.specs:
            try:
                return spec.check(value, field)
            except FileFormatError:
                continue
        raise _bad(field, self.expected, value)


class ListOf(Spec):
    """A list whose items all match `item`."""

    def __init__(self, item: Spec, max_len: int = MAX_ITEMS):
        self.item, self.max_len = item, max_len
        self.expected = f"a list of {item.expected}"

    def check(self, value: Any, field: str) -> list:
        if not isinstance(value, list) or len(value) > self.max_len:
            raise _bad(field, self.expected, type(value).__name__)
        return [self.item.check(v, f"{field}[{i}]") for i, v in enumerate(value)]


class DictOf(Spec):
    """A dict with string keys whose values all match `value`."""

    def __init__(self, value: Spec, max_len: int = MAX_ITEMS):
        self.value, self.max_len = value, max_len
        self.expected = f"a dict of str to {value.expected}"

    def check(self, value: Any, field: str) -> dict:
        if not isinstance(value, dict) or len(value) > self.max_len:
            raise _bad(field, self.expected, type(value).__name__)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad(f"{field} key", "a string", k)
            out[k] = self.value.check(v, f"{field}[{k!r}]")
        return out


class Record(Spec):
    """A dict with exactly the declared fields (`optional` ones may be missing)."""

    def __init__(self, fields: dict[str, Spec], optional: tuple[str, ...] = ()):
        self.fields, self.optional = fields, optional
        self.expected = "a dict with fields " + ", ".join(fields)

    def check(self, value: Any, field: str) -> dict:
        return check_fields(self.fields, value, field, optional=self.optional)


def check_fields(
    schema: dict[str, Spec], state: Any, where: str, optional: tuple[str, ...] | bool = True
) -> dict:
    """Validates a dict of state against `schema`; returns the checked values.

    Args:
        schema: Field name -> Spec.
        state: The restored dict.
        where: Prefix of field names in errors (e.g. 'EarlyStopping').
        optional: True if every field may be missing, or the names that may be.

    Raises:
        FileFormatError: for a non-dict, an undeclared or missing field, or a
            field of the wrong type, naming it.
    """
    if not isinstance(state, dict):
        raise _bad(where, "a dict", type(state).__name__)
    unknown = [k for k in state if k not in schema]
    if unknown:
        raise FileFormatError(
            f"field {where}.{unknown[0]!s:.60}: not a restorable field of {where} "
            f"(it restores only {sorted(schema)})"
        )
    out = {}
    for name, spec in schema.items():
        if name not in state:
            if optional is True or name in (optional or ()):
                continue
            raise FileFormatError(f"field {where}.{name}: missing")
        out[name] = spec.check(state[name], f"{where}.{name}")
    return out


# PCG64 stream state, as `SeedGenerator.get_state` writes it.
RNG_STATE = Record(
    {
        "seed": Int(0, 2**128 - 1),
        "state": Int(0, 2**128 - 1),
        "inc": Int(0, 2**128 - 1),
        "has_uint32": Int(0, 1),
        "uinteger": Int(0, 2**32 - 1),
    }
)


def check_rng_states(states: Any, count: int, field: str) -> list[dict]:
    """Validates a list of `count` random-stream states (one per generator of a model)."""
    checked = ListOf(RNG_STATE).check(states, field)
    if len(checked) != count:
        raise FileFormatError(
            f"field {field!r}: holds {len(checked)} random-stream states, but the model has "
            f"{count} random streams"
        )
    return checked
