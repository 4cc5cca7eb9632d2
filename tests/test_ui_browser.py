"""The web pages in a real browser: Debian's chromium, headless, driven by Selenium through
chromium-driver, against the app served over real HTTP on a copy of the demo workspace.

Every page loads without a console error or a failed request for each role allowed to see it and
is refused for the others; a steward decides a pair with the keyboard and the JSON API, the served
graph and a full re-run of resolution show it; a person asks for a correction and a steward
approves it; a form without its CSRF token is refused. The screenshots in docs/screenshots/ are
taken here (the last test waits for the apply jobs the others started: it runs last)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from campus_kg.workspace import Workspace

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (make test installs them)")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
ROLES = ("self", "steward", "analyst", "auditor", "admin")

# page -> the roles that may open it (the API's, graph_api/authz.py), and the query it is opened with
PAGES = {
    "/ui/me": ({"self"}, ""),
    "/ui/review": ({"steward"}, ""),
    "/ui/corrections": ({"steward"}, ""),
    "/ui/entities": ({"steward"}, "?entity={person}"),
    "/ui/quality": ({"steward", "analyst", "auditor", "admin"}, ""),
    "/ui/lineage": ({"self", "steward", "auditor"}, "?entity={person}&attribute=email"),
    "/ui/forms": ({"self", "steward"}, "?person={person}"),
    "/ui/portraits": ({"self", "analyst"}, "?kind=teacher&person={person}"),
    "/ui/cypher": ({"analyst", "auditor"}, ""),
}
# which role's view of a page goes into docs/screenshots
SCREENSHOT_ROLE = {"/ui/me": "self", "/ui/review": "steward",
                   "/ui/quality": "admin", "/ui/lineage": "auditor", "/ui/forms": "steward",
                   "/ui/portraits": "analyst", "/ui/cypher": "analyst"}


@dataclass
class Site:
    url: str
    app: object
    workspace: Workspace
    settings: object
    tokens: dict[str, str]
    person: str

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="module")
def site(demo, tmp_path_factory):
    from graph_api.app import create_app
    from ingest.lakehouse import Lakehouse
    from tests.http_server import serve

    root = tmp_path_factory.mktemp("ui") / "ws"
    shutil.copytree(demo.workspace.root, root)
    ws = Workspace.at(root)
    settings = demo.settings.model_copy(update={"workspace": ws.root})
    with Lakehouse(ws.lakehouse, read_only=True) as lake:  # a person with many records: every section has rows
        person = lake.con.execute("""SELECT l.master_id FROM res_link l JOIN dwd_person_record p
            ON p.record_id = l.member_id WHERE p.staff_no IS NOT NULL AND l.entity_type = 'Person'
            GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchone()[0]
    app = create_app(settings)
    state = app.state.state_store
    tokens = {role: state.add_user(f"ui-{role}", role, person if role == "self" else None)[1] for role in ROLES}
    with serve(app) as url:
        yield Site(url, app, ws, settings, tokens, person)
        # Decisions and approvals started apply jobs: let them finish before the graph is closed under them.
        app.state.applier.wait(app.state.applier.status()["requested"], timeout=300)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,820", "--lang=zh-CN", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def fresh_logs(browser):
    """Each test sees only the console and network entries of its own pages."""
    problems(browser)


# ---- helpers -------------------------------------------------------------------------------------
def problems(driver) -> list[str]:
    """Console errors and failed requests since the last call (the logs are drained by reading)."""
    found = [f"console: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["status"] >= 400:
                found.append(f"HTTP {response['status']} {response['url']}")
        elif message["method"] == "Network.loadingFailed" and not message["params"].get("canceled"):
            found.append(f"failed: {message['params'].get('errorText')}")
    return found


def sign_in(driver, site: Site, role: str, next_page: str = "") -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{site.url}/ui/login" + (f"?next={next_page}" if next_page else ""))
    driver.find_element(By.NAME, "token").send_keys(site.tokens[role])
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]"))
    assert "/ui/login" not in driver.current_url, driver.find_element(By.TAG_NAME, "body").text


def submit(driver, button) -> None:
    """Click a form's button (or send a key that does) and wait for the next page to replace this one."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    button() if callable(button) else button.click()

    def replaced(_) -> bool:
        try:
            page.is_enabled()
            return False
        except (StaleElementReferenceException, WebDriverException):
            # Chrome sometimes reports the old page's detached node as an inspector error
            # ("Node with given id does not belong to the document") instead of a stale element
            return True

    WebDriverWait(driver, 30).until(replaced)


def text_of(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def screenshot(driver, name: str) -> None:
    """A small PNG: the viewport, reduced to a 64-colour palette when Pillow is at hand."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(target))
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(target) as image:
        image.convert("RGB").quantize(colors=64).save(target, optimize=True)


# ---- sign-in -------------------------------------------------------------------------------------
def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(browser, site):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{site.url}/ui/me")
    assert "/ui/login" in browser.current_url  # no session: the sign-in page, which comes back to /ui/me
    screenshot(browser, "login")
    browser.find_element(By.NAME, "token").send_keys("ckg_nonsense_token")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]"))
    assert "令牌无效" in text_of(browser) and "/ui/login" in browser.current_url
    problems(browser)  # the refused sign-in answered 401 on purpose

    browser.find_element(By.NAME, "token").send_keys(site.tokens["self"])
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]"))
    assert browser.current_url.endswith("/ui/me")
    cookie = next(c for c in browser.get_cookies() if c["name"] == "ckg_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert site.tokens["self"] not in cookie["value"]
    assert browser.execute_script("return document.cookie") == ""  # no script can read it

    submit(browser, browser.find_element(By.CSS_SELECTOR, "form.signout button"))
    assert "/ui/login" in browser.current_url
    browser.get(f"{site.url}/ui/me")
    assert "/ui/login" in browser.current_url
    assert problems(browser) == []


def test_a_revoked_token_ends_its_sessions(browser, site):
    state = site.app.state.state_store
    token_id, token = state.add_user("ui-short-lived", "steward")
    site.tokens["short"] = token
    sign_in(browser, site, "short")
    browser.get(f"{site.url}/ui/review")
    assert browser.current_url.endswith("/ui/review")
    state.revoke(token_id)
    browser.get(f"{site.url}/ui/review")
    assert "/ui/login" in browser.current_url


# ---- every page, every role ----------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_each_page_loads_cleanly_for_its_roles_and_is_refused_to_the_others(browser, site, role):
    from selenium.webdriver.common.by import By

    sign_in(browser, site, role)
    problems(browser)
    for path, (allowed, query) in PAGES.items():
        browser.get(f"{site.url}{path}{query.format(person=site.person)}")
        if role in allowed:
            assert browser.current_url.startswith(f"{site.url}{path}"), (role, path, browser.current_url)
            assert browser.find_element(By.TAG_NAME, "h1").text, (role, path)
            assert problems(browser) == [], (role, path)
            if SCREENSHOT_ROLE.get(path) == role:
                screenshot(browser, path.removeprefix("/ui/").replace("/", "-"))
        else:
            assert "403" in browser.find_element(By.ID, "error-detail").text, (role, path)
            assert re.search(r"HTTP 403 .*" + re.escape(path), "\n".join(problems(browser))), (role, path)
    visible = {a.get_attribute("href").removeprefix(site.url) for a in browser.find_elements(By.CSS_SELECTOR, "nav a")}
    assert {p for p, (allowed, _) in PAGES.items() if role in allowed} <= visible
    assert not {p for p, (allowed, _) in PAGES.items() if role not in allowed} & visible


def test_reading_my_page_is_in_my_access_log(browser, site):
    sign_in(browser, site, "self")
    browser.get(f"{site.url}/ui/me")
    entries = site.app.state.state_store.access_entries(person_id=site.person)
    mine = [e for e in entries if e["endpoint"] == "GET /ui/me" and e["actor"] == "ui-self"]
    assert mine and json.loads(mine[-1]["fields"])
    api = httpx.get(f"{site.url}/access-log", headers=site.bearer("self")).json()
    assert any(e["endpoint"] == "GET /ui/me" for e in api)
    browser.refresh()
    assert "GET /ui/me" in text_of(browser)  # and the page shows it under "who read my record"
    session = {c["name"]: c["value"] for c in browser.get_cookies()}
    export = httpx.get(f"{site.url}/ui/me/export", params={"format": "json"}, cookies=session)
    assert export.status_code == 200 and export.json()["record"]["master_id"] == site.person


# ---- CSRF ----------------------------------------------------------------------------------------
def test_a_form_without_its_csrf_token_is_refused(browser, site):
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "steward")
    queue = httpx.get(f"{site.url}/review/queue", params={"page_size": 500}, headers=site.bearer("steward")).json()
    item_id = [i["item_id"] for i in queue["items"] if not i["reason"].startswith("ambiguous mention")][-1]
    browser.get(f"{site.url}/ui/review?item={item_id}")
    browser.execute_script("document.querySelector('#decide input[name=csrf_token]').remove()")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#decide button[value=same]"))
    assert "CSRF" in browser.find_element(By.ID, "error-detail").text
    detail = httpx.get(f"{site.url}/review/items/{item_id}", headers=site.bearer("steward")).json()
    assert detail["decisions"] == []  # nothing was recorded

    # Outside the browser too: a session cookie alone, a wrong token, or a sign-in form without one.
    session = next(c["value"] for c in browser.get_cookies() if c["name"] == "ckg_session")
    with httpx.Client(base_url=site.url, cookies={"ckg_session": session}) as client:
        form = {"item_id": item_id, "judgement": "same", "reason": "forged"}
        assert client.post("/ui/review/decision", data=form).status_code == 403
        assert client.post("/ui/review/decision", data={**form, "csrf_token": "0" * 64}).status_code == 403
        assert client.post("/ui/logout", data={"next": "/ui/me"}).status_code == 403
    assert httpx.post(f"{site.url}/ui/login", data={"token": site.tokens["steward"]}).status_code == 403
    assert httpx.get(f"{site.url}/review/items/{item_id}", headers=site.bearer("steward")).json()["decisions"] == []


# ---- analysts and auditors -----------------------------------------------------------------------
def test_an_analyst_runs_cypher_and_sees_a_table_and_a_graph(browser, site):
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "analyst")
    browser.get(f"{site.url}/ui/cypher")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#cypher-form button[type=submit]"))
    results = browser.find_element(By.ID, "results")
    assert len(results.find_elements(By.CSS_SELECTOR, "tbody tr")) == 12  # the example's LIMIT 12
    assert results.find_elements(By.CSS_SELECTOR, "svg.graph circle")
    assert results.find_elements(By.CSS_SELECTOR, "svg.graph line")  # MEMBER_OF drawn between its ends
    assert problems(browser) == []
    browser.execute_script("document.getElementById('results').scrollIntoView()")
    screenshot(browser, "cypher-results")
    entries = site.app.state.state_store.access_entries(actor="ui-analyst")
    assert any(e["endpoint"] == "POST /cypher" for e in entries)  # logged as the API logs it

    # a write is refused by the API's own guard, and said beside the query
    textarea = browser.find_element(By.NAME, "query")
    textarea.clear()
    textarea.send_keys("MATCH (p:Person) SET p.name = 'x' RETURN p")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#cypher-form button[type=submit]"))
    assert browser.find_element(By.ID, "cypher-error").text
    problems(browser)  # answered 400 on purpose


def test_research_portrait_and_masking_for_analysts(browser, site):
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "analyst")
    browser.get(f"{site.url}/ui/portraits?kind=research")
    assert browser.find_elements(By.CSS_SELECTOR, "#by-year svg.bars rect")
    assert problems(browser) == []
    screenshot(browser, "portraits-research")
    browser.get(f"{site.url}/ui/portraits?kind=student&person={site.person}")
    assert "not shown to this role" in browser.find_element(By.ID, "portrait").text  # hardship is sensitive
    assert problems(browser) == []


def test_a_person_may_trace_only_their_own_values(browser, site):
    from selenium.webdriver.common.by import By

    other = httpx.get(f"{site.url}/review/queue", params={"status": "all", "page_size": 500},
                      headers=site.bearer("steward")).json()["items"]
    stranger = next(m for i in other for m in (i["master_a"], i["master_b"]) if m and m != site.person)
    sign_in(browser, site, "self")
    browser.get(f"{site.url}/ui/lineage")  # their own entity by default
    assert browser.find_elements(By.CSS_SELECTOR, "#statements tbody tr")
    browser.get(f"{site.url}/ui/lineage?attribute=name&as_of=1990-01-01")  # before any source held it
    assert browser.find_element(By.ID, "value-as-of").text == "—"
    browser.get(f"{site.url}/ui/lineage?entity={stranger}&attribute=email")
    assert "403" in browser.find_element(By.ID, "error-detail").text
    problems(browser)


# ---- a correction, asked for and approved ----------------------------------------------------------
def test_a_person_asks_for_a_correction_and_a_steward_approves_it(browser, site):
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "self")
    browser.get(f"{site.url}/ui/me")
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-property='email']")
    row.find_element(By.CSS_SELECTOR, "details.fix summary").click()
    row.find_element(By.NAME, "proposed_value").send_keys("corrected.in.ui@example.edu.cn")
    row.find_element(By.NAME, "reason").send_keys("邮箱已更换 / my address changed")
    submit(browser, row.find_element(By.CSS_SELECTOR, "form.correction button"))
    request_id = browser.find_element(By.ID, "sent").text.split()[1]
    mine = httpx.get(f"{site.url}/me/corrections", headers=site.bearer("self")).json()
    assert {c["request_id"]: c["status"] for c in mine}[request_id] == "open"
    assert problems(browser) == []

    sign_in(browser, site, "steward")
    browser.get(f"{site.url}/ui/corrections")
    screenshot(browser, "corrections")
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-request='{request_id}']")
    row.find_element(By.NAME, "note").send_keys("已核实 / checked with HR")
    submit(browser, row.find_element(By.CSS_SELECTOR, "button[value=approved]"))
    assert request_id in browser.find_element(By.ID, "done").text
    assert problems(browser) == []

    mine = httpx.get(f"{site.url}/me/corrections", headers=site.bearer("self")).json()
    decided = next(c for c in mine if c["request_id"] == request_id)
    assert decided["status"] == "approved" and decided["decided_by"] == "ui-steward"
    sign_in(browser, site, "self")
    browser.get(f"{site.url}/ui/me#corrections")
    assert "已批准 approved" in browser.find_element(By.ID, "corrections").text


# ---- merge with a preview --------------------------------------------------------------------------
def test_a_steward_previews_a_merge_and_merges(browser, site):
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "steward")
    queue = httpx.get(f"{site.url}/review/queue", params={"page_size": 500}, headers=site.bearer("steward")).json()
    pair = [i for i in queue["items"] if i["master_a"] and i["master_b"] and i["master_a"] != i["master_b"]
            and not i["reason"].startswith("ambiguous mention")][-1]
    browser.get(f"{site.url}/ui/entities?merge={pair['master_a']},{pair['master_b']}")
    moving = httpx.get(f"{site.url}/persons/{pair['master_b']}", headers=site.bearer("steward")).json()
    assert browser.find_element(By.ID, "moving").text.split()[1] == str(len(moving["source_records"]))
    assert problems(browser) == []
    screenshot(browser, "entities")
    browser.find_element(By.CSS_SELECTOR, "#merge input[name=reason]").send_keys("同一人 / one person, checked")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#merge form.decide button"))
    assert "merge" in browser.find_element(By.ID, "done").text
    assert problems(browser) == []
    trail = httpx.get(f"{site.url}/audit-trail", headers=site.bearer("auditor")).json()
    merged = [e for e in trail if e["action"] == "entities.merge"]
    assert merged and merged[-1]["actor"] == "ui-steward"
    assert merged[-1]["target"] == f"{pair['master_a']},{pair['master_b']}"


# ---- the steward workbench -----------------------------------------------------------------------
def test_a_steward_decides_a_pair_with_the_keyboard_and_the_api_graph_and_a_rerun_show_it(browser, site):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "steward")
    queue = httpx.get(f"{site.url}/review/queue", params={"page_size": 500}, headers=site.bearer("steward")).json()
    pair = next(i for i in queue["items"] if i["master_a"] and i["master_b"] and i["master_a"] != i["master_b"]
                and not i["reason"].startswith("ambiguous mention"))
    browser.get(f"{site.url}/ui/review?item={pair['item_id']}")
    item = browser.find_element(By.ID, "item")
    assert item.get_attribute("data-item") == pair["item_id"]
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.waterfall rect")
    detail = httpx.get(f"{site.url}/review/items/{pair['item_id']}", headers=site.bearer("steward")).json()
    weights = [c for c in detail["comparisons"] if c["match_weight"] is not None]
    assert len(bars) == len(weights) + 2  # the prior, one bar per comparison, the total
    assert problems(browser) == []
    browser.execute_script("document.getElementById('item').scrollIntoView()")
    screenshot(browser, "review-pair")
    following = browser.find_elements(By.ID, "next-item")
    if following:  # J walks to the next item in the queue, K back
        target = following[0].get_attribute("href").rsplit("item=", 1)[1]
        submit(browser, lambda: ActionChains(browser).send_keys("j").perform())
        assert browser.find_element(By.ID, "item").get_attribute("data-item") == target
        submit(browser, lambda: ActionChains(browser).send_keys("k").perform())
        assert browser.find_element(By.ID, "item").get_attribute("data-item") == pair["item_id"]

    submit(browser, lambda: ActionChains(browser).send_keys("s").perform())  # S: the same
    assert "/ui/review" in browser.current_url and pair["item_id"] in browser.find_element(By.ID, "done").text
    assert pair["item_id"] not in browser.find_element(By.ID, "queue").text  # decided: off the open queue
    assert problems(browser) == []
    after = httpx.get(f"{site.url}/review/items/{pair['item_id']}", headers=site.bearer("steward")).json()
    assert after["item"]["judgement"] == "same" and after["item"]["status"] == "decided"
    assert [d["steward"] for d in after["decisions"]] == ["ui-steward"]
    trail = httpx.get(f"{site.url}/audit-trail", headers=site.bearer("auditor")).json()
    assert any(e["action"] == "review.decision" and e["target"] == pair["item_id"] for e in trail)

    # the apply job re-resolves and patches the served graph: the two records are one person now
    applier = site.app.state.applier
    status = applier.wait(applier.status()["requested"], timeout=240)
    assert status["last_error"] is None, status
    applied = httpx.get(f"{site.url}/review/items/{pair['item_id']}", headers=site.bearer("steward")).json()
    masters = {r["record_id"]: r["master_id"] for r in applied["records"]}
    assert masters.keys() == {pair["record_a"], pair["record_b"]} and len(set(masters.values())) == 1, masters

    # and a full re-run of resolution keeps it: the decision is in the log every run reads
    from rich.console import Console

    from campus_kg import pipeline
    from ingest.lakehouse import Lakehouse

    pipeline.run_resolve(site.workspace, Console(quiet=True), site.settings)
    with Lakehouse(site.workspace.lakehouse, read_only=True) as lake:
        rerun = lake.con.execute("SELECT DISTINCT master_id FROM res_link WHERE member_id IN (?, ?)",
                                 [pair["record_a"], pair["record_b"]]).fetchall()
    assert len(rerun) == 1, rerun
