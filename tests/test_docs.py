"""Datasette-style: a setting, an endpoint or a CLI command that is not documented fails a test."""

from pathlib import Path

from typer.main import get_command

from campus_kg.cli import app
from campus_kg.settings import Settings
from graph_api.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert not missing, f"undocumented settings: {missing}"


def test_every_endpoint_is_documented(tmp_path):
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    app_ = create_app(Settings(workspace=tmp_path))
    # The OpenAPI document is what clients see: every operation in it must be in docs/api.md.
    routes = [(m.upper(), path) for path, ops in app_.openapi()["paths"].items() for m in ops]
    missing = [f"{m} {p}" for m, p in routes if f"`{m} {p}`" not in text]
    assert routes and not missing, f"undocumented endpoints: {missing}"


def test_every_cli_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    group = get_command(app)
    names = []
    for name, cmd in group.commands.items():
        sub = getattr(cmd, "commands", None)
        names += [f"campus-kg {name} {s}" for s in sub] if sub else [f"campus-kg {name}"]
    missing = [n for n in names if n not in readme]
    assert not missing, f"commands missing from README: {missing}"
    assert "make demo" in readme and "make test" in readme
