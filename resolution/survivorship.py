"""Survivorship (一数一源): each master attribute comes from the most authoritative source for that
property (rank from the mapping), then the most recent run, then the value most sources agree on.
Every disagreement between sources is kept as a conflict with all its values."""

from __future__ import annotations

import duckdb

RULE = "authority_rank>recency>agreement"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS res_attribute (
        master_id VARCHAR, entity_type VARCHAR, property VARCHAR, value VARCHAR,
        source_record_id VARCHAR, authority_rank INTEGER, support INTEGER, rule VARCHAR)""")
    con.execute("""CREATE TABLE IF NOT EXISTS res_conflict (
        master_id VARCHAR, entity_type VARCHAR, property VARCHAR, n_values INTEGER, "values" VARCHAR[])""")


def survive(con: duckdb.DuckDBPyConnection, corrections: list[dict] | None = None) -> None:
    """Chooses each master attribute's value; approved corrections (a steward agreed with the person,
    PIPL art. 46) override the sources until a newer correction, and say so in their rule."""
    # Organisations and disciplines get their attributes from names and the code list, not here.
    con.execute("DELETE FROM res_attribute WHERE entity_type NOT IN ('Organisation', 'Discipline')")
    con.execute("DELETE FROM res_conflict")
    con.execute(f"""
        INSERT INTO res_attribute
        WITH cand AS (
            SELECT l.master_id, l.entity_type, s.property, s.value, s.record_id, r.run_id,
                   coalesce(a.rank, 9) AS authority_rank
            FROM dwd_statement s
            JOIN dwd_record r USING (record_id)
            JOIN res_link l ON l.member_id = s.record_id AND l.entity_type = r.entity_type
            LEFT JOIN source_authority a ON a.source = r.source AND a.property = s.property
            WHERE s.value IS NOT NULL),
        agreed AS (
            SELECT *, count(*) OVER (PARTITION BY master_id, property, value) AS support FROM cand),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY master_id, property
                                         ORDER BY authority_rank, run_id DESC, support DESC, value, record_id) AS rn
            FROM agreed)
        SELECT master_id, entity_type, property, value, record_id, authority_rank, support, '{RULE}'
        FROM ranked WHERE rn = 1""")
    con.execute("""
        INSERT INTO res_conflict
        SELECT l.master_id, l.entity_type, s.property, count(DISTINCT s.value), list(DISTINCT s.value ORDER BY s.value)
        FROM dwd_statement s
        JOIN dwd_record r USING (record_id)
        JOIN res_link l ON l.member_id = s.record_id AND l.entity_type = r.entity_type
        WHERE s.value IS NOT NULL
        GROUP BY ALL HAVING count(DISTINCT s.value) > 1""")
    if corrections:
        _apply_corrections(con, corrections)


def _apply_corrections(con: duckdb.DuckDBPyConnection, corrections: list[dict]) -> None:
    """The newest approved correction of each (person, property) wins; a person merged since the
    request is followed to the entity it was merged into."""
    import pyarrow as pa

    newest: dict[tuple[str, str], dict] = {}
    for c in sorted(corrections, key=lambda c: c["at"]):
        newest[(c["person_id"], c["property"])] = c
    con.register("_corrections", pa.Table.from_pylist([
        {"master_id": m, "property": p, "value": c["proposed_value"], "rule": f"correction:{c['request_id']}"}
        for (m, p), c in newest.items()]))
    con.execute("""CREATE OR REPLACE TEMP TABLE _corrected AS
        WITH RECURSIVE follow(start_id, master_id, depth) AS (
            SELECT master_id, master_id, 0 FROM _corrections
            UNION ALL
            SELECT f.start_id, r.merged_into, f.depth + 1 FROM follow f
            JOIN res_master_registry r ON r.master_id = f.master_id AND r.status = 'merged' AND f.depth < 20)
        SELECT DISTINCT ON (c.master_id, c.property) f.master_id, c.property, c.value, c.rule
        FROM _corrections c JOIN follow f ON f.start_id = c.master_id
        WHERE f.master_id IN (SELECT master_id FROM res_link WHERE entity_type = 'Person')""")
    con.execute("""DELETE FROM res_attribute a USING _corrected c
        WHERE a.master_id = c.master_id AND a.property = c.property AND a.entity_type = 'Person'""")
    con.execute("""INSERT INTO res_attribute SELECT master_id, 'Person', property, value, NULL, 0, 1, rule
        FROM _corrected""")
    con.unregister("_corrections")
