// One source record as it stands: its system, the master it resolved to (and how), and its current values.
MATCH (r:SourceRecord {id: $id})
OPTIONAL MATCH (r)-[link:RESOLVED_TO]->(m)
OPTIONAL MATCH (s:Statement)-[:STATED_IN]->(r)
WHERE s.retired_at IS NULL
RETURN r.id AS record_id, r.system AS system, m.id AS master_id, link.rule AS rule,
       s.stated_property AS property, s.value AS value
