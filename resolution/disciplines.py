"""Disciplines: one master per code of the SKOS discipline catalogue (ontology/codelists.ttl) that
a source refers to, named by the catalogue's preferred label. A code the catalogue lacks is left
out (ingest flags it against the code list)."""

from __future__ import annotations

import duckdb

from ontology.model import load_ontology


def discipline_codes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(code, Chinese label) for every catalogue discipline a relationship or a value names."""
    scheme = load_ontology().code_list_for("discipline_code")
    if scheme is None:
        return []
    seen = {v for (v,) in con.execute("""
        SELECT DISTINCT target_value FROM dwd_relation WHERE target_type = 'Discipline'
        UNION SELECT DISTINCT value FROM dwd_statement WHERE property = 'discipline_code' AND value IS NOT NULL
        """).fetchall()}
    return [(code, scheme.codes[code]) for code in sorted(seen) if code in scheme.codes]


def member(code: str) -> str:
    return f"discipline:{code}"
