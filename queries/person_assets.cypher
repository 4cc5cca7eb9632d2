// The assets in a person's custody, with value and dates.
MATCH (p:Person {id: $id})-[r:CUSTODIAN_OF]->(x:Asset)
RETURN x.id AS id, x.name AS title, x.asset_no AS asset_no, x.original_value AS value, r.start_date AS start_date,
       r.end_date AS end_date
ORDER BY title
