// The research projects a person leads, with their start and funding (10k CNY).
MATCH (p:Person {id: $id})-[:LEADS]->(x:Project)
RETURN x.id AS id, x.title AS title, x.project_start AS start_date, x.funding AS funding
ORDER BY start_date DESC, title
