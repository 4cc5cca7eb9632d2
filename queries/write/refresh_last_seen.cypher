// After a patch: the statements still made in one source table were seen again in its newest load.
MATCH (s:Statement)-[:STATED_IN]->(r:SourceRecord)
WHERE r.system = $system AND r.table_name = $table_name AND s.retired_at IS NULL
SET s.last_seen = $seen
