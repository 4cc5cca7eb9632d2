// A person's research outputs, with their author rank and year.
MATCH (p:Person)-[r:AUTHOR_OF]->(x:Publication)
WHERE p.id = $id
RETURN x.id AS id, x.title AS title, r.rank AS rank, x.publication_year AS year
ORDER BY year DESC, title
