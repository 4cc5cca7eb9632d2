// The master Person node with its surviving attributes.
MATCH (p:Person)
WHERE p.id = $id
RETURN p AS person
