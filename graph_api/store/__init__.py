"""Graph-store port and adapters. Open a store with `open_store`; never import an adapter directly."""

from graph_api.store.base import GraphStore, GraphStoreError, PersonRead, QueryTimeout
from graph_api.store.factory import open_store

__all__ = ["GraphStore", "GraphStoreError", "PersonRead", "QueryTimeout", "open_store"]
