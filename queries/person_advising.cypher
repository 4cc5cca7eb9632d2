// A person's advisees (direction out) and advisors (direction in), with the role and dates.
MATCH (p:Person {id: $id})-[r:ADVISES]->(x:Person)
RETURN 'out' AS direction, x.id AS id, x.name AS title, r.role AS role, r.start_date AS start_date,
       r.end_date AS end_date
UNION ALL
MATCH (x:Person)-[r:ADVISES]->(p:Person {id: $id})
RETURN 'in' AS direction, x.id AS id, x.name AS title, r.role AS role, r.start_date AS start_date,
       r.end_date AS end_date
