from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from campus_kg import pipeline
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import open_store
from ingest.synthetic import GenerationResult, generate


@dataclass
class Demo:
    generated: GenerationResult
    workspace: Workspace
    settings: Settings
    ingest: object
    resolve: object
    build: object


def run_pipeline(tmp: Path, persons: int, seed: int = 7) -> Demo:
    generated = generate(tmp / "sources", persons=persons, seed=seed)
    ws = Workspace.at(tmp / "ws")
    settings = Settings(workspace=ws.root)
    console = Console(quiet=True)
    ing = pipeline.run_ingest(generated.mapping_path, ws, console)
    res = pipeline.run_resolve(ws, console)
    built = pipeline.run_build(settings, ws, console)
    return Demo(generated, ws, settings, ing, res, built)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """A small synthetic university run through the whole pipeline once per test session."""
    return run_pipeline(tmp_path_factory.mktemp("demo"), persons=800)


@pytest.fixture
def graph_store_factory(tmp_path):
    """Opens an empty store of the requested backend, closes it afterwards."""
    opened = []

    def make(backend: str):
        settings = Settings(workspace=tmp_path)
        store = open_store(settings, backend=backend, ladybug_path=tmp_path / "contract.lbdb")
        if backend == "neo4j":
            store.clear()
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()
