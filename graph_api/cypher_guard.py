"""Analysts' Cypher: what the API checks before and after the database runs a query.

Writes are refused by the database itself (the served Ladybug graph is opened read-only; Neo4j reads
run in read transactions). This module adds what a database cannot know:
- a query starts with a reading clause and calls only catalogue functions: a read-only Ladybug
  database still runs CHECKPOINT (leaving the file needing recovery), EXPORT DATABASE (writing files
  on the server) and `CALL setting=value` (changing the connection's timeout);
- no clause that writes, manages transactions or reaches outside the graph (so the answer is a clear
  400 whatever the backend would say);
- one statement per request (Ladybug would otherwise run every statement of a script);
- for roles that may not see sensitive values (ontology `ckg:sensitive`): no query naming a
  sensitive property, a statement's raw value, or a property by computed key — so a value cannot be
  fetched under an alias — and every node or map in the answer masked by its keys.
"""

from __future__ import annotations

import re
from typing import Any

from ontology.masking import mask
from ontology.model import load_ontology

# Strings and comments are blanked out before looking for statement separators.
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_COMPUTED_KEY = re.compile(r"\w\s*\[\s*(?:['\"$]|\w+\s*\+)")  # n['id_number'], n[$key], n[a + b]
_RAW_STATEMENT_VALUES = ("value", "written_value")


READING_START = re.compile(r"^\s*(MATCH|OPTIONAL\s+MATCH|UNWIND|WITH|RETURN|CALL)\b", re.I)
ALLOWED_CALLS = ("show_tables", "table_info", "show_connection", "db_version")
_CALL = re.compile(r"\bCALL\b\s*([A-Za-z_]\w*)?\s*(\()?", re.I)
NOT_READING = ("CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "ALTER", "COPY", "LOAD", "INSTALL",
               "EXPORT", "IMPORT", "ATTACH", "USE", "CHECKPOINT", "BEGIN", "COMMIT", "ROLLBACK", "FOREACH")
_NOT_READING = re.compile(r"\b(" + "|".join(NOT_READING) + r")\b", re.I)


class CypherRefused(ValueError):
    pass


def _code_only(query: str) -> str:
    return _COMMENTS.sub(" ", _STRINGS.sub("''", query))


def check(query: str, sees_sensitive: bool) -> None:
    code = _code_only(query)
    if ";" in code.rstrip().rstrip(";"):
        raise CypherRefused("one statement per request")
    if not READING_START.match(code):
        raise CypherRefused("a query starts with MATCH, OPTIONAL MATCH, UNWIND, WITH, RETURN or CALL")
    for call in _CALL.finditer(code):
        if (call.group(1) or "").lower() not in ALLOWED_CALLS or not call.group(2):
            raise CypherRefused(f"only these procedures may be called: {', '.join(ALLOWED_CALLS)}")
    if word := _NOT_READING.search(code):
        raise CypherRefused(f"read-only: {word.group(1).upper()} is not a reading clause")
    if sees_sensitive:
        return
    sensitive = sorted(p.name for p in load_ontology().properties.values() if p.sensitive)
    lowered = query.lower()  # strings too: WHERE s.stated_property = 'id_number'
    named = [p for p in sensitive if re.search(rf"\b{p}\b", lowered)]
    if named:
        raise CypherRefused(f"sensitive properties are not available to this role: {', '.join(named)}")
    if re.search(r"\.\s*(" + "|".join(_RAW_STATEMENT_VALUES) + r")\b", code):
        raise CypherRefused("statements' raw values are not available to this role; use GET /lineage")
    if _COMPUTED_KEY.search(code):
        raise CypherRefused("properties by computed key are not available to this role")


def mask_rows(rows: list[dict[str, Any]], sees_sensitive: bool) -> tuple[list[dict[str, Any]], bool]:
    """Masks every sensitive value inside nodes and maps (by key; statements by their property)."""
    if sees_sensitive:
        return rows, False
    sensitive = {p.name for p in load_ontology().properties.values() if p.sensitive}
    masked = False

    def walk(value: Any) -> Any:
        nonlocal masked
        if isinstance(value, dict):
            stated = value.get("stated_property")
            out = {}
            for k, v in value.items():
                if v is not None and (k in sensitive or (stated in sensitive and k in _RAW_STATEMENT_VALUES)):
                    out[k], masked = mask(stated if k in _RAW_STATEMENT_VALUES else k, v), True
                else:
                    out[k] = walk(v)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return [walk(r) for r in rows], masked
