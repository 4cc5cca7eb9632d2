// Every source record resolved to a master Person, and the rule that linked it. (The system's name
// and department come from source_systems: joining to a system node from here would walk all of
// its records.)
MATCH (p:Person {id: $id})<-[l:RESOLVED_TO]-(r:SourceRecord)
RETURN r.id AS record_id, r.system AS system, r.table_name AS table_name, r.record_key AS record_key,
       l.rule AS rule
