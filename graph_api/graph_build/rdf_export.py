"""RDF export with W3C PROV-O provenance, from the lakehouse (the same data the graph is built from).

- Each master entity is typed with its ontology class and carries its chosen attribute values
  with the ontology's datatypes, and `prov:wasDerivedFrom` every source record resolved to it.
- Each source record is a `prov:Entity` (ckg:SourceRecord), `prov:wasGeneratedBy` the ingest run
  that loaded it (a `prov:Activity` with its start and end) and `prov:wasAttributedTo` its source
  system (a `prov:SoftwareAgent` acting for the owning department).
- The SKOS code lists the values come from are included as concept schemes.
Sensitive properties (ontology `ckg:sensitive`) are left out unless asked for: an export leaves
the access control of the API behind it.
"""

from __future__ import annotations

from urllib.parse import quote

from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import FOAF, PROV, SKOS

from ingest.lakehouse import LINEAGE_RUNS_SQL, Lakehouse
from ontology.model import CKG, ONTOLOGY_DIR, load_ontology

ID = Namespace("https://w3id.org/campus-kg/id/")
DATATYPES = {"date": XSD.date, "double": XSD.decimal, "int": XSD.integer, "bool": XSD.boolean,
             "timestamp": XSD.dateTime}


def _iri(kind: str, key: str) -> URIRef:
    return ID[f"{kind}/{quote(key, safe='')}"]


def master_iri(master_id: str) -> URIRef:
    return ID[master_id]


def export_graph(lake: Lakehouse, include_sensitive: bool = False) -> Graph:
    ont = load_ontology()
    g = Graph()
    for prefix, ns in (("ckg", CKG), ("prov", PROV), ("skos", SKOS), ("foaf", FOAF), ("id", ID)):
        g.bind(prefix, ns)
    g.parse(ONTOLOGY_DIR / "codelists.ttl", format="turtle")  # code values as SKOS concepts

    for master_id, entity_type in lake.con.execute(
            "SELECT DISTINCT master_id, entity_type FROM res_link ORDER BY 1").fetchall():
        g.add((master_iri(master_id), RDF.type, ont.cls(entity_type).iri))
        g.add((master_iri(master_id), CKG.id, Literal(master_id)))
    for master_id, prop_name, value in lake.con.execute("""
            SELECT master_id, property, value FROM res_attribute ORDER BY 1, 2""").fetchall():
        prop = ont.properties.get(prop_name)
        if prop is None or value is None or (prop.sensitive and not include_sensitive):
            continue
        datatype = DATATYPES.get(prop.datatype)
        g.add((master_iri(master_id), prop.iri, Literal(value, datatype=datatype) if datatype else Literal(value)))

    for record_id, master_id in lake.con.execute("""SELECT l.member_id, l.master_id FROM res_link l
            JOIN dwd_record d ON d.record_id = l.member_id""").fetchall():
        g.add((master_iri(master_id), PROV.wasDerivedFrom, _iri("record", record_id)))
    for record_id, system, table, key, run_id in lake.con.execute(
            "SELECT record_id, system, table_name, record_key, run_id FROM dwd_record").fetchall():
        rec = _iri("record", record_id)
        g.add((rec, RDF.type, CKG.SourceRecord))
        g.add((rec, RDF.type, PROV.Entity))
        g.add((rec, CKG.id, Literal(record_id)))
        g.add((rec, RDFS.label, Literal(f"{table} {key}", lang="zh")))
        g.add((rec, PROV.wasGeneratedBy, _iri("run", run_id)))
        g.add((rec, PROV.wasAttributedTo, _iri("system", system)))
    for run_id, started, finished in lake.con.execute(
            f"SELECT run_id, started_at, finished_at FROM ingest_run WHERE run_id IN ({LINEAGE_RUNS_SQL})").fetchall():
        run = _iri("run", run_id)
        g.add((run, RDF.type, CKG.IngestRun))
        g.add((run, RDF.type, PROV.Activity))
        g.add((run, PROV.startedAtTime, Literal(started, datatype=XSD.dateTime)))
        if finished is not None:
            g.add((run, PROV.endedAtTime, Literal(finished, datatype=XSD.dateTime)))
    for system, name, department in lake.con.execute("SELECT system, name, department FROM source_system").fetchall():
        agent = _iri("system", system)
        g.add((agent, RDF.type, CKG.SourceSystem))
        g.add((agent, RDF.type, PROV.SoftwareAgent))
        g.add((agent, FOAF.name, Literal(name, lang="zh")))
        dept = _iri("department", department)
        g.add((dept, RDF.type, PROV.Organization))
        g.add((dept, FOAF.name, Literal(department, lang="zh")))
        g.add((agent, PROV.actedOnBehalfOf, dept))
    return g
