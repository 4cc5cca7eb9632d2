// The source systems, their names and the departments that own them.
MATCH (s:SourceSystem)
RETURN s.id AS system, s.name AS name, s.department AS department
ORDER BY system
