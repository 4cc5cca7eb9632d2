"""The order in which stewards should see review items: the decisions that teach the model most first.

A steward's `same` / `not_same` on a record pair is a training label (person_model.train: m from
labels once there are MIN_LABELS_FOR_M of them), and a label teaches most where the model is least
sure. So an item's priority is the binary entropy of its match probability, in bits (0 … 1): a
pair at p = 0.5 scores 1, at 0.9 or 0.1 0.47, at 0.99 0.08.

- A conflict — a link the model wanted (p at or above the match threshold) that a constraint
  refused (two valid ID numbers or passports, a steward's "not the same") — scores 1: the model
  and the data contradict each other, and one of them is wrong.
- An ambiguous mention (an author or leader named only by name) scores by how close its two best
  candidates are: the entropy of the choice between them (their probabilities, or their scores as
  bits in older items), times MENTION_WEIGHT — deciding it links one mention and labels no record
  pair, so it teaches the model nothing and waits behind the pairs the model is unsure of.
"""

from __future__ import annotations

import json
import math

CONFLICT_PRIORITY = 1.0
MENTION_WEIGHT = 0.5


def binary_entropy(p: float | None) -> float:
    """H(p) in bits; 0 for a certain (or missing) probability."""
    if p is None or not 0 < p < 1:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _top_two_share(candidates: list[dict]) -> float | None:
    """The first candidate's share of the choice between the two best, or None with fewer than two."""
    if len(candidates) < 2:
        return None
    if all(isinstance(c.get("probability"), (int, float)) for c in candidates):
        first, second = sorted((c["probability"] for c in candidates), reverse=True)[:2]
        return first / (first + second) if first + second > 0 else 0.5
    if all(isinstance(c.get("score"), (int, float)) for c in candidates):
        first, second = sorted((c["score"] for c in candidates), reverse=True)[:2]
        return 1 / (1 + 2.0 ** (second - first))  # a score point taken as a bit of evidence
    return None


def review_priority(item: dict) -> float:
    """The priority of one review item (a dict as person linkage and mentions make them)."""
    if (item.get("reason") or "").startswith("conflict"):
        return CONFLICT_PRIORITY
    evidence = item.get("evidence")
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            evidence = None
    candidates = evidence.get("candidates") if isinstance(evidence, dict) else None
    if isinstance(candidates, list):
        share = _top_two_share([c for c in candidates if isinstance(c, dict)])
        return MENTION_WEIGHT * (binary_entropy(share) if share is not None else 0.0)
    return binary_entropy(item.get("match_probability"))
