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


def survive(con: duckdb.DuckDBPyConnection) -> None:
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
