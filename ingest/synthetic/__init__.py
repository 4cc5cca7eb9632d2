"""A synthetic university: a true population and the nine business systems' messy exports of it."""

from ingest.synthetic.generate import GenerationResult, generate

__all__ = ["GenerationResult", "generate"]
