// Everything a master person points to, in one read: memberships and positions, outputs (with
// author rank), projects led, assets in custody, advisees. Each row: the relationship and the node.
MATCH (p:Person {id: $id})-[r:MEMBER_OF|AUTHOR_OF|LEADS|CUSTODIAN_OF|ADVISES]->(x)
RETURN r AS rel, x AS other
