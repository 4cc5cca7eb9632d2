"""一表通 /ui/forms: pick a form, see it prefilled with each value's source, print it.

GET /forms and POST /forms/{template}/prefill answer (graph_api.routers.forms): a `self` user fills
their own forms, a steward anyone's; the prefill is logged as the API logs it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from graph_api.models import PrefillRequest
from graph_api.routers import forms
from graph_api.ui.pages import PageRoute, client_of, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)


@router.get("/ui/forms")
def forms_page(request: Request, session: Session = page("forms.prefill"), template: str | None = None,
               person: str | None = None) -> Response:
    principal, app = session.principal, request.app
    templates = forms.list_forms(principal)
    template = template or (templates[0].name if templates else None)
    person = (person or "").strip() or None
    filled = None
    if template and (person or principal.person_id):
        filled = forms.prefill(template, PrefillRequest(person_id=person), principal, app.state.graph,
                               app.state.state_store, client_of(request))
    return render(request, "forms.html", session, title="一表通 One form", templates=templates, template=template,
                  person=person or "", filled=filled, picks_person=principal.role != "self")
