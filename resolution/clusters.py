"""Union-find with cannot-link constraints: a merge that would put two conflicting values of a
constrained property (two different valid ID numbers) in one cluster is refused and reported."""

from __future__ import annotations

from collections.abc import Hashable


class ConstrainedUnionFind:
    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}
        self.exclusive: dict[Hashable, str] = {}  # root -> the one constrained value it holds
        self.refused: list[tuple[Hashable, Hashable, str]] = []

    def add(self, item: Hashable, exclusive_value: str | None = None) -> None:
        if item not in self.parent:
            self.parent[item] = item
            self.size[item] = 1
        if exclusive_value:
            root = self.find(item)
            self.exclusive.setdefault(root, exclusive_value)

    def find(self, item: Hashable) -> Hashable:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: Hashable, b: Hashable, reason: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        va, vb = self.exclusive.get(ra), self.exclusive.get(rb)
        if va and vb and va != vb:
            self.refused.append((a, b, reason))
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        if va or vb:
            self.exclusive[ra] = va or vb  # type: ignore[assignment]
        return True

    def groups(self) -> dict[Hashable, list[Hashable]]:
        out: dict[Hashable, list[Hashable]] = {}
        for item in self.parent:
            out.setdefault(self.find(item), []).append(item)
        return out
