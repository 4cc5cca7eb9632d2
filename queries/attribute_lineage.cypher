// Lineage of one attribute of one master entity: every statement ever made about it, the source
// record, system and load it came from, when it was first and last seen, and whether it is chosen.
// `:Entity` stands for the entity's master class (Person, Organisation, ...), named by the caller.
MATCH (m:Entity {id: $entity_id})<-[:DESCRIBES]-(s:Statement)
WHERE s.stated_property = $property
OPTIONAL MATCH (s)-[:STATED_IN]->(r:SourceRecord)
OPTIONAL MATCH (r)-[:LOADED_IN]->(run:IngestRun)
RETURN s.id AS statement_id, s.value AS value, s.written_value AS written_value, s.chosen AS chosen,
       s.rule AS rule, s.authority AS authority, s.first_seen AS first_seen, s.last_seen AS last_seen,
       s.retired_at AS retired_at, r.id AS record_id, r.record_key AS record_key, r.table_name AS table_name,
       r.system AS system, run.id AS run_id
ORDER BY chosen DESC, authority, last_seen DESC, statement_id
