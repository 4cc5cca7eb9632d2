"""Portraits (画像) of teachers, students and research by organisation, and the data-quality report."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from fastapi import APIRouter, HTTPException, Query, status

from graph_api.deps import (ClientDep, GraphDep, PortraitReader, QualityReader, ResearchPortraitReader, StateDep,
                            WorkspaceDep)
from graph_api.models import Portrait, ResearchPortrait, Section
from graph_api.lineage import source_systems
from graph_api.person_view import ensure_self, ensure_self_id
from ontology.masking import may_see
from ontology.model import load_ontology
from queries import load_query

router = APIRouter(tags=["portraits 画像与质量"])
NO_TEACHING = "no teaching-schedule (排课) export is mapped yet: the section fills once one is"
NO_COURSES = "no course-enrolment (选课) export is mapped yet"


def _name(graph, person_id: str) -> str | None:
    rows = graph.query("MATCH (p:Person {id: $id}) RETURN p.name AS name", {"id": person_id})
    return rows[0]["name"] if rows else None


def _sources(graph, person_id: str, systems: set[str]) -> list[dict]:
    names = source_systems(graph)
    return [{"record_id": r["record_id"], "system": r["system"], "system_name": names[r["system"]]["name"]}
            for r in graph.query(load_query("person_sources"), {"id": person_id}) if r["system"] in systems]


@router.get("/portraits/teachers/{person_id}", response_model=Portrait,
            summary="教师画像 / Teacher portrait: teaching load, output by year, projects, advisees")
def teacher(person_id: str, principal: PortraitReader, graph: GraphDep, state: StateDep,
            client: ClientDep) -> Portrait:
    person_id = ensure_self_id(graph, principal, person_id)
    outputs = graph.query(load_query("person_outputs"), {"id": person_id})
    by_year = Counter(o["year"] for o in outputs)
    first = Counter(o["year"] for o in outputs if o["rank"] == 1)
    projects = graph.query(load_query("person_projects"), {"id": person_id})
    advisees = [a for a in graph.query(load_query("person_advising"), {"id": person_id}) if a["direction"] == "out"]
    sections = {
        "teaching_load": Section(available=False, note=NO_TEACHING),
        "research_output_by_year": Section(available=True, rows=[
            {"year": y, "outputs": n, "first_author": first.get(y, 0)}
            for y, n in sorted(by_year.items(), key=lambda kv: (kv[0] is None, kv[0]))]),
        "projects": Section(available=True, note=f"funding total {sum(p['funding'] or 0 for p in projects):.2f} "
                                                 "(10k CNY)", rows=projects),
        "advisees": Section(available=True, rows=advisees),
    }
    state.log_access(principal, person_id, f"GET /portraits/teachers/{person_id}", list(sections), client)
    return Portrait(person_id=person_id, name=_name(graph, person_id), sections=sections)


@router.get("/portraits/students/{person_id}", response_model=Portrait,
            summary="学生画像 / Student portrait: courses, library, campus card, hardship (by role)")
def student(person_id: str, principal: PortraitReader, graph: GraphDep, state: StateDep,
            client: ClientDep) -> Portrait:
    person_id, _, node = ensure_self(graph, principal, person_id)
    hardship = load_ontology().prop("economic_hardship")
    sections = {
        "courses": Section(available=False, note=NO_COURSES),
        "library": Section(available=True, note="reader registrations; loan records are not mapped yet",
                           rows=_sources(graph, person_id, {"TSG"})),
        "campus_card": Section(available=True, note="card accounts; transactions are not mapped yet",
                               rows=_sources(graph, person_id, {"YKT"})),
    }
    if may_see(principal.role, hardship):
        sections["economic_hardship"] = Section(available=True, rows=[{"level": node.get("economic_hardship")}])
    else:
        sections["economic_hardship"] = Section(available=False, note="not shown to this role (sensitive)")
    state.log_access(principal, person_id, f"GET /portraits/students/{person_id}",
                     [k for k, v in sections.items() if v.available], client)
    return Portrait(person_id=person_id, name=node.get("name"), sections=sections)


@router.get("/portraits/research", response_model=ResearchPortrait,
            summary="科研画像 / Outputs, projects and funding by organisation and year, with the trend")
def research(principal: ResearchPortraitReader, graph: GraphDep,
             org: str | None = Query(None, description="organisation ID (its sub-organisations count in)")
             ) -> ResearchPortrait:
    tree = graph.query(load_query("org_tree"))
    names = {o["id"]: o["name"] for o in tree}
    children = defaultdict(list)
    for o in tree:
        if o["parent_id"]:
            children[o["parent_id"]].append(o["id"])
    if org is not None and org not in names:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no organisation {org}")
    roots = [org] if org else [o["id"] for o in tree if not o["parent_id"]]
    within: dict[str, str] = {}  # organisation -> the root it rolls up into
    for root in roots:
        stack = [root]
        while stack:
            current = stack.pop()
            if current not in within:
                within[current] = root
                stack.extend(children[current])
    orgs = list(within)
    outputs = graph.query(load_query("research_outputs_by_org"), {"orgs": orgs})
    projects = graph.query(load_query("research_projects_by_org"), {"orgs": orgs})
    year_outputs, year_projects, year_funding = set(), set(), defaultdict(float)
    per_org: dict[str, dict] = defaultdict(lambda: {"outputs": set(), "projects": set(), "funding": 0.0})
    counted_funding: set[tuple[str, str]] = set()
    for o in outputs:
        year_outputs.add((o["year"], o["output_id"]))
        per_org[within[o["org_id"]]]["outputs"].add(o["output_id"])
    for p in projects:
        year = p["start_date"].year if p["start_date"] else None
        if (year, p["project_id"]) not in year_projects:
            year_projects.add((year, p["project_id"]))
            year_funding[year] += p["funding"] or 0
        root = within[p["org_id"]]
        per_org[root]["projects"].add(p["project_id"])
        if (root, p["project_id"]) not in counted_funding:
            counted_funding.add((root, p["project_id"]))
            per_org[root]["funding"] += p["funding"] or 0
    years = sorted({y for y, _ in year_outputs | year_projects if y is not None})
    by_year, previous = [], None
    for y in years:
        n = sum(1 for yy, _ in year_outputs if yy == y)
        by_year.append({"year": y, "outputs": n, "projects": sum(1 for yy, _ in year_projects if yy == y),
                        "funding": round(year_funding[y], 2),
                        "outputs_change": None if previous in (None, 0) else round((n - previous) / previous, 3)})
        previous = n
    by_org = [{"org_id": r, "org_name": names.get(r), "outputs": len(v["outputs"]), "projects": len(v["projects"]),
               "funding": round(v["funding"], 2)} for r, v in sorted(per_org.items())]
    return ResearchPortrait(org=org, org_name=names.get(org) if org else None, by_year=by_year, by_org=by_org)


@router.get("/quality", summary="数据质量 / The latest data-quality report, with traffic lights and trend")
def quality(principal: QualityReader, workspace: WorkspaceDep) -> dict:
    if not workspace.quality_report.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no quality report yet: run `campus-kg ingest`")
    return json.loads(workspace.quality_report.read_text(encoding="utf-8"))
