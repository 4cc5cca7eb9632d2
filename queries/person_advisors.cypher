// A person's advisors, with the role and dates of the advising.
MATCH (x:Person)-[r:ADVISES]->(p:Person {id: $id})
RETURN x.id AS id, x.name AS title, r.role AS role, r.start_date AS start_date, r.end_date AS end_date
