"""Is a secret fit for production? Refuses shipped examples, placeholders and low-entropy strings.

A length check alone lets through `aaaa…a` and `.env.example`'s own placeholder (which is long on
purpose, so that people see where the real value goes); Settings calls this in `prod` mode."""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cache
from pathlib import Path

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
# The words people leave in when they copy a template: change-me…, replace-with-…, <your secret>.
PLACEHOLDER = re.compile(r"^\s*(change[-_ .]?me|changeit|replace|your[-_ ]|todo|fixme|placeholder|example|dummy)"
                         r"|<[^>]*>", re.IGNORECASE)
# A 32-character secret from a password generator has 14+ distinct characters (hex) and ~3.8+ bits/char.
MIN_DISTINCT = 12  # 12, not 16: a hex secret (`openssl rand -hex 32`) has only 16 symbols
MIN_BITS_PER_CHAR = 3.3  # 32 random hex characters average 3.6


@cache
def example_values() -> frozenset[str]:
    """Every value `.env.example` sets (when the checkout ships one): never a real secret."""
    if not ENV_EXAMPLE.exists():
        return frozenset()
    values = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            values.add(line.split("=", 1)[1].strip().strip("'\""))
    return frozenset(v for v in values if v)


def bits_per_char(secret: str) -> float:
    """Shannon entropy of the string's own character distribution."""
    counts = Counter(secret)
    return -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values()) if secret else 0.0


def weak_secret_reason(secret: str, min_length: int) -> str | None:
    """Why `secret` is refused, or None. Shorter secrets (a 12-character password) are held to a
    proportionally lower bar: at most half their characters may repeat."""
    if len(secret) < min_length:
        return f"shorter than {min_length} characters"
    if secret in example_values():
        return "the value shipped in .env.example"
    if PLACEHOLDER.search(secret):
        return "a placeholder (change-me…, replace…, <…>), not a secret"
    distinct_needed = min(MIN_DISTINCT, len(secret) // 2)
    if len(set(secret)) < distinct_needed:
        return f"only {len(set(secret))} distinct characters (at least {distinct_needed} needed)"
    bits_needed = min(MIN_BITS_PER_CHAR, 0.75 * math.log2(len(secret)))
    if bits_per_char(secret) < bits_needed:
        return f"too predictable ({bits_per_char(secret):.2f} bits per character, at least {bits_needed:.2f} needed)"
    return None
