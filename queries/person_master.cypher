// The master Person node with its surviving attributes.
MATCH (p:Person {id: $id})
RETURN p AS person
