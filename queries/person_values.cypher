// Every current statement about a master person: value, source record and system, authority, when
// last seen, and whether survivorship chose it. The personal data centre groups them per property
// (in Python: sorting here costs more than the rest of the query).
MATCH (p:Person {id: $id})<-[:DESCRIBES]-(s:Statement)
WHERE s.retired_at IS NULL AND s.value IS NOT NULL
MATCH (s)-[:STATED_IN]->(r:SourceRecord)
RETURN s.stated_property AS property, s.value AS value, s.chosen AS chosen, s.rule AS rule,
       s.authority AS authority, s.last_seen AS last_seen, r.id AS record_id, r.system AS system
