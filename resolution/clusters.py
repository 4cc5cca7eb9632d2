"""Union-find with cannot-link constraints: a merge that would put two conflicting values of a
constrained property (two different valid ID numbers) in one cluster, or two records a steward
said are not the same, is refused and reported. Links are added strongest first, so a cluster
that would join conflicting records is cut at its weakest links."""

from __future__ import annotations

from collections.abc import Hashable


class ConstrainedUnionFind:
    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}
        # root -> {kind: the one value of that kind it holds}: an ID number, a passport of one country
        self.exclusive: dict[Hashable, dict[str, str]] = {}
        self.refused: list[tuple[Hashable, Hashable, str]] = []
        self.partners: dict[Hashable, set[Hashable]] = {}  # root -> records its members must not join
        # pairs a rule would have joined but left to the model: a shared staff number, names disagree
        self.held_back: list[tuple[Hashable, Hashable, str]] = []

    def hold_back(self, a: Hashable, b: Hashable, reason: str) -> None:
        """Records that a rule did not join a and b (a typo in a hand-typed identifier is likelier
        than one person under two unrelated names); nothing stops other evidence joining them."""
        self.held_back.append((a, b, reason))

    def forbid(self, a: Hashable, b: Hashable) -> None:
        """Cannot-link: a and b must never end in one cluster (a steward's "not the same")."""
        self.add(a)
        self.add(b)
        self.partners.setdefault(self.find(a), set()).add(b)
        self.partners.setdefault(self.find(b), set()).add(a)

    def _forbidden(self, ra: Hashable, rb: Hashable) -> bool:
        return (any(self.find(p) == rb for p in self.partners.get(ra, ()))
                or any(self.find(p) == ra for p in self.partners.get(rb, ())))

    def add(self, item: Hashable, exclusive_value: str | None = None, **exclusive_kinds: str | None) -> None:
        """`exclusive_value`: the item's ID number; `exclusive_kinds`: further constrained values by
        kind (a passport number per issuing country). A cluster never holds two values of one kind."""
        if item not in self.parent:
            self.parent[item] = item
            self.size[item] = 1
        values = {"id_number": exclusive_value, **exclusive_kinds}
        held = self.exclusive.setdefault(self.find(item), {})
        for kind, value in values.items():
            if value:
                held.setdefault(kind, value)

    def find(self, item: Hashable) -> Hashable:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: Hashable, b: Hashable, reason: str, *, override_exclusive: bool = False) -> bool:
        """Joins the clusters of a and b unless a constraint forbids it. `override_exclusive`: a
        steward's "the same" may join two different ID numbers; nothing overrides a "not the same"."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        va, vb = self.exclusive.get(ra, {}), self.exclusive.get(rb, {})
        clash = any(kind in vb and _conflict(kind, value, vb[kind]) for kind, value in va.items())
        if (clash and not override_exclusive) or self._forbidden(ra, rb):
            self.refused.append((a, b, reason))
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        if va or vb:
            self.exclusive[ra] = {**vb, **va}  # a steward's override keeps the larger cluster's value
        if rb in self.partners:
            self.partners.setdefault(ra, set()).update(self.partners.pop(rb))
        return True

    def groups(self) -> dict[Hashable, list[Hashable]]:
        out: dict[Hashable, list[Hashable]] = {}
        for item in self.parent:
            out.setdefault(self.find(item), []).append(item)
        return out


def _conflict(kind: str, a: str, b: str) -> bool:
    """Two values of one constrained kind that cannot belong to one entity. A passport number has no
    check character: one typo (a changed or swapped character) is more likely than a second passport
    from the same country differing in one place, so it does not veto."""
    if a == b:
        return False
    if kind.startswith("passport:"):
        import jellyfish

        return jellyfish.damerau_levenshtein_distance(a, b) > 1
    return True
