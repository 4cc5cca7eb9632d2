// Whether a master Person has this ID now.
MATCH (p:Person {id: $id})
RETURN p.id AS id
