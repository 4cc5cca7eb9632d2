// Research outputs of the members of some organisations, one row per organisation and output.
MATCH (o:Organisation)<-[:MEMBER_OF]-(p:Person)-[:AUTHOR_OF]->(w:Publication)
WHERE o.id IN $orgs
RETURN DISTINCT o.id AS org_id, w.id AS output_id, w.publication_year AS year
