"""Resolution: source records -> links, clusters, master entities with stable IDs, survivorship."""
