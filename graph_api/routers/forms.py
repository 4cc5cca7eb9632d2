"""One form (一表通): fill once, reuse many times."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from graph_api import form_templates
from graph_api.deps import ClientDep, FormFiller, GraphDep, StateDep
from graph_api.models import FormTemplateInfo, Prefill, PrefillRequest
from graph_api.person_view import fields_returned, find_permitted, person_record

router = APIRouter(tags=["forms 一表通"])


@router.get("/forms", response_model=list[FormTemplateInfo], summary="表单模板 / Form templates")
def list_forms(principal: FormFiller) -> list[FormTemplateInfo]:
    return [FormTemplateInfo(name=t.name, title_zh=t.title_zh, title_en=t.title_en, audience=t.audience,
                             fields=[f.label for f in t.fields]) for t in form_templates.templates().values()]


@router.post("/forms/{template}/prefill", response_model=Prefill,
             summary="表单预填 / Prefill a form from a person's record, each field with its provenance")
def prefill(template: str, body: PrefillRequest, principal: FormFiller, graph: GraphDep, state: StateDep,
            client: ClientDep) -> Prefill:
    """Every field the graph can fill, with the system and record its value came from; `unfilled`
    lists the fields the person still fills by hand. `self` callers prefill their own forms."""
    form = form_templates.templates().get(template)
    if form is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no form template {template!r} (have: {', '.join(form_templates.templates())})")
    requested = body.person_id or principal.person_id
    if not requested:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "person_id is required")
    record = person_record(graph, requested, principal.role, find_permitted(graph, principal, requested))
    fields, unfilled = form_templates.prefill(form, record)
    state.log_access(principal, record.master_id, f"POST /forms/{template}/prefill", fields_returned(record), client)
    return Prefill(template=form.name, title_zh=form.title_zh, title_en=form.title_en, person_id=record.master_id,
                   fields=fields, unfilled=unfilled)
