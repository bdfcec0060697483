"""A minimal YAML reader for the cluster/ manifests, so tests need no PyYAML.

Reads the block-style subset those files use: nested mappings and sequences by
indentation, `- key: value` items, plain/quoted scalars, JSON-style flow
collections (`{}`, `["a"]`) and full-line comments. Anything else raises
ValueError. Where PyYAML is installed, the tests check this reader against it.
"""

from __future__ import annotations

import json
import re

_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$")


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped == "---":
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"line {number}: tabs in indentation")
        if " #" in stripped and not stripped.startswith(("'", '"')) and '"' not in stripped:
            raise ValueError(f"line {number}: trailing comments are not supported")
        out.append((len(raw) - len(raw.lstrip(" ")), stripped))
    return out


def scalar(text: str):
    """Converts a scalar the way YAML 1.1's core schema does for the forms used here."""
    if text[:1] in "[{" or text[:1] == '"':
        return json.loads(text)
    if text[:1] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise ValueError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in ("null", "~", "Null", "NULL"):
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text[:1] in "&*!|>%@`":
        raise ValueError(f"unsupported YAML syntax: {text}")
    return text


def _key_split(text: str):
    if text[:1] in "'\"[{":
        return None
    if text.endswith(":"):
        return text[:-1], ""
    key, sep, rest = text.partition(": ")
    return (key, rest) if sep else None


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _block(lines, i, indent):
    if _is_item(lines[i][1]):
        return _seq(lines, i, indent)
    return _map(lines, i, indent)


def _seq(lines, i, indent):
    out = []
    while i < len(lines) and lines[i][0] == indent and _is_item(lines[i][1]):
        rest = lines[i][1][1:].lstrip()
        if not rest:
            if i + 1 >= len(lines) or lines[i + 1][0] <= indent:
                out.append(None)
                i += 1
                continue
            value, i = _block(lines, i + 1, lines[i + 1][0])
        elif _key_split(rest) is not None:
            column = indent + len(lines[i][1]) - len(rest)
            lines[i] = (column, rest)
            value, i = _map(lines, i, column)
        else:
            value, i = scalar(rest), i + 1
        out.append(value)
    return out, i


def _map(lines, i, indent):
    out = {}
    while i < len(lines) and lines[i][0] == indent and not _is_item(lines[i][1]):
        split = _key_split(lines[i][1])
        if split is None:
            raise ValueError(f"expected 'key: value', got {lines[i][1]!r}")
        key, rest = split
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if rest:
            value, i = scalar(rest), i + 1
        elif nxt is not None and nxt[0] > indent:
            value, i = _block(lines, i + 1, nxt[0])
        elif nxt is not None and nxt[0] == indent and _is_item(nxt[1]):
            value, i = _seq(lines, i + 1, indent)
        else:
            value, i = None, i + 1
        out[key] = value
    if i < len(lines) and lines[i][0] > indent:
        raise ValueError(f"bad indentation at {lines[i][1]!r}")
    return out, i


def load(text: str):
    """Parses one YAML document of the supported subset."""
    lines = _lines(text)
    if not lines:
        return None
    value, i = _block(lines, 0, lines[0][0])
    if i != len(lines):
        raise ValueError(f"unexpected content at {lines[i][1]!r}")
    return value
