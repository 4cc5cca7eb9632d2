"""The data resource directory (公共数据资源目录): every source table and field, as DCAT.

A table is a dcat:Dataset published by its owning department, with a distribution for the export
and a CSVW table schema whose columns point at the ontology property they map to, with the
property's classification level (GB/T 43697), personal-information level and the column's
authority rank (一数一源).
"""

from __future__ import annotations

from urllib.parse import quote

from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, XSD

from ingest.lakehouse import Lakehouse
from ontology.model import CKG, load_ontology

CSVW = Namespace("http://www.w3.org/ns/csvw#")
ORG = Namespace("http://www.w3.org/ns/org#")
BASE = Namespace("https://w3id.org/campus-kg/catalogue/")
MEDIA_TYPES = {"csv": "text/csv", "tsv": "text/tab-separated-values", "json": "application/json",
               "jsonl": "application/jsonl",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _iri(kind: str, name: str) -> URIRef:
    return BASE[f"{kind}/{quote(name, safe='')}"]


def catalogue_graph(lake: Lakehouse) -> tuple[Graph, int]:
    run_id = lake.latest_run()
    if run_id is None:
        raise LookupError("no completed ingest run: run `campus-kg ingest` first")
    ont = load_ontology()
    g = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("csvw", CSVW), ("org", ORG),
                       ("ckg", CKG), ("cat", BASE)):
        g.bind(prefix, ns)
    catalog = BASE["catalog"]
    g.add((catalog, RDF.type, DCAT.Catalog))
    g.add((catalog, DCTERMS.title, Literal("公共数据资源目录", lang="zh")))
    g.add((catalog, DCTERMS.title, Literal("Public data resource directory", lang="en")))
    stats = lake.con.execute("""SELECT s.source, s.system, COALESCE(y.name, s.system), s.table_name, s.department,
            s.entity_type, s.file, s.loaded, s.data_as_of
        FROM source_stats s LEFT JOIN source_system y USING (system) WHERE s.run_id = ? ORDER BY 1""",
                             [run_id]).fetchall()
    fields = lake.con.execute("SELECT source, column_name, property, rank FROM source_field ORDER BY 1, 2").fetchall()
    for source, system, system_name, table, department, entity_type, file, loaded, as_of in stats:
        ds = _iri("dataset", source)
        dept = _iri("department", department)
        sysnode = _iri("system", system)
        g.add((catalog, DCAT.dataset, ds))
        g.add((ds, RDF.type, DCAT.Dataset))
        g.add((ds, DCTERMS.identifier, Literal(source)))
        g.add((ds, DCTERMS.title, Literal(table, lang="zh")))
        g.add((ds, DCTERMS.publisher, dept))
        g.add((ds, CKG.sourceSystem, sysnode))
        g.add((ds, DCAT.theme, ont.cls(entity_type).iri))
        g.add((ds, CKG.recordCount, Literal(loaded, datatype=XSD.integer)))
        if as_of is not None:
            g.add((ds, DCTERMS.modified, Literal(as_of.isoformat(), datatype=XSD.dateTime)))
        g.add((dept, RDF.type, FOAF.Organization))
        g.add((dept, RDF.type, ORG.OrganizationalUnit))
        g.add((dept, FOAF.name, Literal(department, lang="zh")))
        g.add((sysnode, RDF.type, CKG.SourceSystem))
        g.add((sysnode, FOAF.name, Literal(system_name, lang="zh")))
        dist = _iri("distribution", source)
        g.add((ds, DCAT.distribution, dist))
        g.add((dist, RDF.type, DCAT.Distribution))
        fmt = file.rsplit(".", 1)[-1].lower() if "." in file else "sql"
        g.add((dist, DCTERMS["format"], Literal(fmt)))
        if fmt in MEDIA_TYPES:
            g.add((dist, DCAT.mediaType, URIRef(f"https://www.iana.org/assignments/media-types/{MEDIA_TYPES[fmt]}")))
        schema = _iri("schema", source)
        g.add((ds, CSVW.tableSchema, schema))
        levels = set()
        for src, column, prop_name, rank in fields:
            if src != source:
                continue
            prop = ont.prop(prop_name)
            col = _iri("column", f"{source}/{column}/{prop_name}")
            g.add((schema, CSVW.column, col))
            g.add((col, CSVW.name, Literal(column)))
            g.add((col, CSVW.propertyUrl, prop.iri))
            g.add((col, CSVW.title, Literal(prop.label_zh, lang="zh")))
            g.add((col, CSVW.title, Literal(prop.label_en, lang="en")))
            for annotation in (CKG.classification, CKG.personalInfo):
                level = ont.graph.value(prop.iri, annotation)
                if level is not None:
                    g.add((col, annotation, level))
                    if annotation == CKG.classification:
                        levels.add(level)
            g.add((col, CKG.authorityRank, Literal(rank, datatype=XSD.integer)))
        # A table is classified at the level of its most protected field.
        for level in (CKG.LevelCore, CKG.LevelImportant, CKG.LevelGeneral):
            if level in levels:
                g.add((ds, CKG.classification, level))
                break
    return g, len(stats)
