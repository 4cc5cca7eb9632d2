// The organisations a master Person is a member of.
MATCH (p:Person)-[m:MEMBER_OF]->(o:Organisation)
WHERE p.id = $id
RETURN o.id AS org_id, o.name AS org_name, m.role AS role
ORDER BY org_name
