// Projects led by the members of some organisations, with their start and funding (10k CNY).
MATCH (o:Organisation)<-[:MEMBER_OF]-(p:Person)-[:LEADS]->(j:Project)
WHERE o.id IN $orgs
RETURN DISTINCT o.id AS org_id, j.id AS project_id, j.project_start AS start_date, j.funding AS funding
