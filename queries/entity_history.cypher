// The former master IDs merged into an entity, and where a former ID went (merged or retired).
MATCH (f:FormerId {id: $id})
OPTIONAL MATCH (f)-[:MERGED_INTO]->(m)
RETURN f.id AS former_id, f.entity_type AS entity_type, f.status AS status, f.changed_at AS changed_at,
       m.id AS merged_into
UNION ALL
MATCH (f:FormerId)-[:MERGED_INTO]->(m)
WHERE m.id = $id
RETURN f.id AS former_id, f.entity_type AS entity_type, f.status AS status, f.changed_at AS changed_at,
       m.id AS merged_into
