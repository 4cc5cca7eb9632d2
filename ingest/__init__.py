"""Ingest: source exports -> lakehouse (raw ODS tables + standardised DWD tables)."""
