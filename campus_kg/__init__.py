"""campus-kg: the CLI and the pipeline spine that ties ingest, resolution, graph build and API together."""

__version__ = "0.1.0"
