// Every source record resolved to a master Person, with its system and the rule that linked it.
MATCH (r:SourceRecord)-[l:RESOLVED_TO]->(p:Person)
WHERE p.id = $id
MATCH (r)-[:FROM_SYSTEM]->(s:SourceSystem)
RETURN r.id AS record_id, s.id AS system, s.name AS system_name, s.department AS department,
       r.table_name AS table_name, r.record_key AS record_key, l.rule AS rule
ORDER BY system, table_name, record_key
