// The organisations a master Person is a member of, with the role held and its dates.
MATCH (p:Person {id: $id})-[m:MEMBER_OF]->(o:Organisation)
RETURN o.id AS org_id, o.name AS org_name, m.role AS role, m.start_date AS start_date, m.end_date AS end_date
ORDER BY org_name, start_date
