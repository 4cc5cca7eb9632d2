// A former master ID: merged into which entity (or retired), and when.
MATCH (f:FormerId {id: $id})
OPTIONAL MATCH (f)-[:MERGED_INTO]->(m)
RETURN f.status AS status, f.changed_at AS changed_at, m.id AS merged_into
