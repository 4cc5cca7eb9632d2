"""How far any linker could go on the corpus's person mentions with the evidence a mention carries:
an upper bound for issue 12's measure (person pairwise recall, mentions counted as records).

An oracle knows every person's true records. For each internal mention it takes the candidates the
product takes (everyone sharing a name key with the written name) and describes each by what the
mention can tell them apart with (a one-word name, which has no key, meets the persons of that
name): whether one of their records bears the written name exactly,
whether the mention's unit (its own, or the record's for the first author) is one of theirs, their
kind of person (staff, degree level, student, other) and whether they advise, or are advised by,
someone the same record names. A mention is *indistinguishable* when another candidate looks the
same on all four (namesake professors of one college, `Xiu Liu` without a unit among five 刘秀): at
the precision the goal asks (0.998) no linker can take it, and it stays a steward's question.
Records are taken as resolved perfectly, so the bound is generous.

    .venv/bin/python -m tests.corpus.ceiling WORKSPACE CORPUS_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb

_SQL = """
CREATE TEMP TABLE truth AS SELECT t.entity_id, d.record_id
    FROM read_csv($persons, all_varchar = true) t
    JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key WHERE t.entity_type = 'Person';
CREATE TEMP TABLE person AS SELECT t.entity_id, p.* FROM truth t JOIN dwd_person_record p USING (record_id);
CREATE TEMP TABLE who AS  -- what an oracle knows of each true person
    SELECT entity_id, list(DISTINCT name) AS names,
           list(DISTINCT k) FILTER (WHERE k <> '') AS keys,
           CASE WHEN bool_or(staff_no IS NOT NULL) THEN 'staff' ELSE COALESCE(min(degree_level),
                CASE WHEN bool_or(student_no IS NOT NULL) THEN 'student' ELSE 'other' END) END AS kind
    FROM (SELECT *, unnest(string_split(COALESCE(name_keys, ''), ';')) AS k FROM person) GROUP BY 1;
CREATE TEMP TABLE unit AS SELECT DISTINCT entity_id, unit FROM (
    SELECT entity_id, org_name AS unit FROM person
    UNION ALL SELECT t.entity_id, r.target_value FROM truth t JOIN dwd_relation r USING (record_id)
    WHERE r.rel_type = 'MEMBER_OF') WHERE unit IS NOT NULL;
CREATE TEMP TABLE advises AS  -- both directions
    SELECT DISTINCT s.entity_id AS a, a.entity_id AS b FROM dwd_relation r JOIN truth s USING (record_id)
    JOIN person a ON a.staff_no = r.target_value WHERE r.rel_type = 'ADVISES' AND r.match_on = 'staff_no';
INSERT INTO advises SELECT b, a FROM advises;
CREATE TEMP TABLE written AS SELECT m.*, d.record_id AS row_id
    FROM read_csv($mentions, all_varchar = true) m JOIN dwd_record d ON d.source = m.source AND d.record_key = m.record_key;
CREATE TEMP TABLE mention AS  -- each relationship by name with its true person, unit and record
    SELECT r.record_id, r.rel_type, r.position, r.target_value AS name, r.target_keys AS keys,
           COALESCE(r.mention_org, CASE WHEN r.position <= 1 THEN (
               SELECT max(value) FROM dwd_statement s WHERE s.record_id = r.record_id AND s.property = 'org_name') END)
               AS unit,
           w.entity_id
    FROM dwd_relation r JOIN written w ON w.row_id = COALESCE(r.stated_by, r.record_id)
         AND (r.stated_by IS NOT NULL OR CAST(w.position AS INTEGER) = r.position)
    WHERE r.target_type = 'Person' AND r.match_on IN ('name', 'author_name');
CREATE TEMP TABLE feature AS  -- every candidate of every internal mention, described
    SELECT m.record_id, m.rel_type, m.position, m.entity_id AS truth, c.entity_id AS candidate,
           list_contains(w.names, m.name) AS exact,
           CASE WHEN m.unit IS NULL THEN NULL
                ELSE EXISTS (SELECT 1 FROM unit u WHERE u.entity_id = c.entity_id AND u.unit = m.unit) END AS unit_ok,
           w.kind,
           EXISTS (SELECT 1 FROM advises a JOIN mention o ON o.entity_id = a.b
                   WHERE a.a = c.entity_id AND o.record_id = m.record_id AND o.position <> m.position) AS advising
    FROM mention m
    JOIN (SELECT DISTINCT m2.record_id, m2.rel_type, m2.position, w2.entity_id
          FROM mention m2, unnest(string_split(COALESCE(m2.keys, ''), ';')) t(k)
          JOIN who w2 ON list_contains(w2.keys, t.k)
          WHERE t.k <> '' AND m2.entity_id <> 'EXTERNAL'
          UNION  -- a one-word name (Sukarno) has no key: the persons of that name
          SELECT m2.record_id, m2.rel_type, m2.position, w2.entity_id FROM mention m2
          JOIN who w2 ON list_contains(list_transform(w2.names, lambda x: lower(x)), lower(m2.name))
          WHERE m2.entity_id <> 'EXTERNAL') c USING (record_id, rel_type, position)
    JOIN who w ON w.entity_id = c.entity_id;
CREATE TEMP TABLE verdict AS
    SELECT m.record_id, m.rel_type, m.position, m.entity_id,
           CASE WHEN m.entity_id = 'EXTERNAL' THEN 'external'
                WHEN NOT EXISTS (SELECT 1 FROM feature f WHERE (f.record_id, f.rel_type, f.position, f.candidate)
                                 = (m.record_id, m.rel_type, m.position, m.entity_id)) THEN 'unreachable'
                WHEN EXISTS (SELECT 1 FROM feature f JOIN feature t USING (record_id, rel_type, position)
                             WHERE (f.record_id, f.rel_type, f.position) = (m.record_id, m.rel_type, m.position)
                               AND t.candidate = m.entity_id AND f.candidate <> m.entity_id
                               AND f.exact = t.exact AND f.unit_ok IS NOT DISTINCT FROM t.unit_ok
                               AND f.kind = t.kind AND f.advising = t.advising) THEN 'indistinguishable'
                ELSE 'distinguishable' END AS verdict
    FROM mention m;
"""

_PAIRS = """
WITH j AS (
    SELECT entity_id AS truth, entity_id AS pred FROM truth
    UNION ALL
    SELECT CASE WHEN entity_id = 'EXTERNAL' THEN 'x:' || record_id || ':' || position ELSE entity_id END,
           CASE WHEN verdict = 'distinguishable' THEN entity_id ELSE 'm:' || record_id || ':' || position END
    FROM verdict),
t AS (SELECT truth, count(*) AS n FROM j GROUP BY 1),
c AS (SELECT truth, pred, count(*) AS n FROM j GROUP BY 1, 2)
SELECT (SELECT sum(n * (n - 1) / 2) FROM t), (SELECT sum(n * (n - 1) / 2) FROM c)
"""


def mention_ceiling(lakehouse: Path, corpus_dir: Path) -> dict:
    """Mentions by verdict, and the person pairwise recall (mentions counted as records) of a linker
    that resolves every record and links every distinguishable mention, and nothing else."""
    con = duckdb.connect(str(lakehouse), read_only=True)
    try:
        params = {"persons": str(corpus_dir / "truth_persons.csv"), "mentions": str(corpus_dir / "truth_mentions.csv")}
        for statement in (s for s in _SQL.split(";\n") if s.strip()):
            names = [k for k in params if f"${k}" in statement]
            con.execute(statement, {k: params[k] for k in names})
        verdicts = dict(con.execute("SELECT verdict, count(*) FROM verdict GROUP BY 1").fetchall())
        true_pairs, found = con.execute(_PAIRS).fetchone()
    finally:
        con.close()
    return {"mentions": verdicts, "true_pairs": int(true_pairs), "found_pairs": int(found),
            "recall": found / true_pairs if true_pairs else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("corpus", type=Path)
    args = parser.parse_args()
    print(json.dumps(mention_ceiling(args.workspace / "lakehouse.duckdb", args.corpus), indent=2))


if __name__ == "__main__":
    main()
