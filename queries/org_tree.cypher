// Every organisation and its parent (university -> college -> department).
MATCH (o:Organisation)
OPTIONAL MATCH (o)-[:SUB_ORGANISATION_OF]->(parent:Organisation)
RETURN o.id AS id, o.name AS name, parent.id AS parent_id
ORDER BY id
