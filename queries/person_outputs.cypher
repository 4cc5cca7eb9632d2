// A person's research outputs, with their author rank and year.
MATCH (p:Person {id: $id})-[r:AUTHOR_OF]->(x:Publication)
RETURN x.id AS id, x.title AS title, r.rank AS rank, x.publication_year AS year
ORDER BY year DESC, title
