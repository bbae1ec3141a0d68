"""Splitting n faces into fixed-size batches ("buckets").

Pure functions, no torch: the runner asks :func:`plan_batches` how to cut a request of ``n``
faces into chunks, each run at one bucket's shape (the chunk padded up to the bucket).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream_gpen.errors import InvalidInputError


@dataclass(frozen=True)
class Chunk:
    """``count`` real faces starting at ``start``, run as a batch of ``bucket`` (``count <= bucket``)."""

    start: int
    count: int
    bucket: int

    def __post_init__(self) -> None:
        if not (0 <= self.start and 1 <= self.count <= self.bucket):
            raise ValueError(f"invalid chunk {self}")

    @property
    def padding(self) -> int:
        return self.bucket - self.count


def validate_buckets(buckets: Sequence[int], max_batch: int | None) -> tuple[int, ...]:
    """Sorted, unique bucket sizes not above ``max_batch``; errors name the bad value."""
    try:
        values = [int(b) for b in buckets]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"buckets must be a sequence of positive integers, got {buckets!r}"
        ) from None
    if not values or any(b < 1 or b != bb for b, bb in zip(values, buckets)):
        raise InvalidInputError(
            f"buckets must be a non-empty sequence of positive integers, got {tuple(buckets)!r}"
        )
    out = sorted(set(values))
    if max_batch is not None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidInputError(f"max_batch must be a positive integer or None, got {max_batch!r}")
        out = [b for b in out if b <= max_batch]
        if not out:
            raise InvalidInputError(
                f"max_batch={max_batch} is smaller than every bucket {tuple(sorted(set(values)))}; "
                "lower the smallest bucket or raise max_batch"
            )
    return tuple(out)


def plan_batches(n: int, buckets: Sequence[int], *, overhead: float = 1.0) -> list[Chunk]:
    """Cut ``n`` faces into chunks, each padded up to one of ``buckets`` (sorted ascending).

    Minimises the estimated cost ``sum(bucket + overhead)`` over chunks, where ``overhead`` is
    the fixed cost of one batch expressed in faces: 0 favours many exact chunks (20 -> 16+4),
    large values favour few padded ones (20 -> 32); ties go to fewer chunks. With the default 1,
    3 -> 4, 20 -> 16+4, 31 -> 32 (padding one face beats five calls), 33 -> 32+1. Faces keep their order.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return []
    bs = sorted(buckets)
    biggest = bs[-1]
    chunks: list[Chunk] = []
    start = 0
    # Far above the biggest bucket, full biggest batches are optimal; only the tail needs search.
    while n - start > 2 * biggest:
        chunks.append(Chunk(start, biggest, biggest))
        start += biggest
    rest = n - start
    # cost[k] = (best cost of covering k faces, number of chunks): ties go to fewer chunks.
    # choice[k] = the bucket of one chunk of that best cover.
    cost: list[tuple[float, int]] = [(0.0, 0)] + [(float("inf"), 0)] * rest
    choice = [0] * (rest + 1)
    for k in range(1, rest + 1):
        for b in bs:
            prev = cost[max(k - b, 0)]
            c = (round(prev[0] + b + overhead, 9), prev[1] + 1)
            if c < cost[k]:
                cost[k], choice[k] = c, b
    picked = []
    k = rest
    while k > 0:
        picked.append(choice[k])
        k -= min(choice[k], k)
    # Largest first, the only padded chunk last. Optimality means dropping any chunk would leave
    # too little room, so the last chunk still gets at least one face.
    for b in sorted(picked, reverse=True):
        take = min(b, n - start)
        chunks.append(Chunk(start, take, b))
        start += take
    return chunks


def exact_chunks(n: int, max_batch: int) -> list[Chunk]:
    """Chunks of at most ``max_batch`` with no padding (for eager runs where shapes may vary)."""
    return [Chunk(s, min(max_batch, n - s), min(max_batch, n - s)) for s in range(0, n, max_batch)]
