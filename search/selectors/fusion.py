"""Reciprocal rank fusion of ranked lists (vector and keyword; records and prompts)."""

from __future__ import annotations

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.; pgvector's hybrid example)


def reciprocal_rank_fusion(*lists: list[tuple[int, float]]) -> dict[int, float]:
    """{id: fused score} of ranked (id, score) lists (k = RRF_K), for records and prompts."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (image_id, _) in enumerate(ranked, start=1):
            fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (RRF_K + rank)
    return fused
