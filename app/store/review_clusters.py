"""The review queue clustered by meaning: within each group, questions whose vectors are close
are one cluster (one unmet need), ranked by volume."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from app.embedding.embedder import Embedder, Vectors
from app.engine.engine import Engine
from app.knowledge.glossary import Glossary
from app.records import Entry
from app.store.feedback import FeedbackStore
from app.store.review_queue import GroupKey, ReviewItem, review_groups

# Two queued questions whose vectors' cosine reaches this are one cluster (one unmet need). Chosen
# on the seed playbook with the bundled all-MiniLM-L6-v2, glossary expanded: 0.03 % of pairs of
# texts labelled with different cards reach 0.80 (17 of 62,316, nearly all the two "PO status
# after a cancellation" cards), against 13 % of pairs labelled with the same card; clustering the
# 506 eval questions greedily puts 182 in 63 clusters of two or more, 24 of them beside another
# card's (mostly near-misses no threshold separates: "3 tracking numbers" vs "over 10"). At 0.85
# only 132 are grouped; at 0.75, 36 are misplaced. A reviewer sees every member before adding.
SAME_MEANING = 0.80

# Texts in, one unit-length row per text out: the engine's model, as the engine embeds questions.
Encode = Callable[[list[str]], Vectors]


@dataclass(frozen=True)
class ReviewCluster:
    """Questions of one group that mean the same: the most-asked (then most recent) first, the
    representative whose vector the others were compared with."""

    members: tuple[ReviewItem, ...]

    @property
    def representative(self) -> ReviewItem:
        return self.members[0]

    @property
    def count(self) -> int:
        """Every open asking of every member: the cluster's volume."""
        return sum(member.count for member in self.members)

    @property
    def query_ids(self) -> tuple[int, ...]:
        return tuple(sorted(i for member in self.members for i in member.query_ids))

    @property
    def last_asked_at(self) -> datetime:
        return max(member.last_asked_at for member in self.members)

    @property
    def verdict(self) -> ReviewItem | None:
        """The first member (in the cluster's order) an agent gave a 👎 with a pick or with
        "none of these"; a pick wins over "none of these"."""
        return (next((m for m in self.members if m.picked_entry_id), None)
                or next((m for m in self.members if m.none_of_these), None))

    def to_dict(self) -> dict[str, object]:
        """The representative's fields, with the cluster's volume, askings, latest asking and
        verdict, plus `members` (each one question, as in `ReviewItem.to_dict`)."""
        verdict = self.verdict
        return {
            **self.representative.to_dict(), "count": self.count,
            "query_ids": list(self.query_ids),
            "last_asked_at": self.last_asked_at.isoformat().replace("+00:00", "Z"),
            "picked_entry_id": verdict.picked_entry_id if verdict else None,
            "none_of_these": verdict.none_of_these if verdict else False,
            "members": [member.to_dict() for member in self.members],
        }


@dataclass(frozen=True)
class ClusteredGroup:
    key: GroupKey
    title: str
    clusters: tuple[ReviewCluster, ...]

    @property
    def count(self) -> int:
        return sum(cluster.count for cluster in self.clusters)


# Vectors of queued questions, per model object and text: the queue is clustered on every look,
# and most of it was there the last time (about 20 ms a question to encode here).
_VECTORS: WeakKeyDictionary[Embedder, OrderedDict[str, Any]] = WeakKeyDictionary()
VECTOR_CACHE_SIZE = 20_000
_cache_lock = threading.Lock()


def encoder(embedder: Embedder, glossary: Mapping[str, str]) -> Encode:
    """Embed questions as the engine embeds a question it is asked: abbreviations spelled out
    beside themselves (the glossary), then the model; texts seen before come from a cache."""
    terms = Glossary(glossary)

    def encode(texts: list[str]) -> Vectors:
        keys = [terms.expand(text) for text in texts]
        with _cache_lock:
            cache = _VECTORS.setdefault(embedder, OrderedDict())
            missing = list(dict.fromkeys(k for k in keys if k not in cache))
        if missing:
            fresh = embedder.encode(missing)
            with _cache_lock:
                cache.update(zip(missing, fresh, strict=True))
                while len(cache) > VECTOR_CACHE_SIZE:
                    cache.popitem(last=False)
        with _cache_lock:
            found = [cache[key] for key in keys if key in cache]
        if len(found) != len(keys):  # evicted meanwhile: encode them all
            return embedder.encode(keys)
        return np.vstack(found) if found else np.zeros((0, embedder.dimension), np.float32)

    return encode


def engine_encoder(engine: Engine) -> Encode:
    """`encoder` over the engine's model and its current knowledge's glossary."""
    return encoder(engine.embedder, engine.knowledge.glossary)


def cluster_items(items: Sequence[ReviewItem], vectors: Vectors,
                  threshold: float = SAME_MEANING) -> tuple[ReviewCluster, ...]:
    """Greedy and deterministic: in the items' order (most-asked, then most recent), each joins
    the first cluster whose representative's vector is within `threshold` (cosine), or starts
    one. Clusters come most-asked first (then most recent, then latest asking)."""
    if not items:
        return ()
    raw = np.asarray(vectors, dtype=np.float64).reshape(len(items), -1)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    rows = raw / np.where(norms > 0, norms, 1.0)  # unit rows, whatever the encoder returned
    representatives: list[int] = []
    members: list[list[ReviewItem]] = []
    for row, item in enumerate(items):
        if representatives:
            cosines = rows[representatives] @ rows[row]
            close = np.flatnonzero(cosines >= threshold)
            if close.size:
                members[int(close[0])].append(item)
                continue
        representatives.append(row)
        members.append([item])
    clusters = [ReviewCluster(tuple(group)) for group in members]
    return tuple(sorted(clusters, key=lambda c: (
        -c.count, -c.last_asked_at.timestamp(), -c.representative.query_id)))


def review_clusters(store: FeedbackStore, entries: Iterable[Entry], encode: Encode,
                    threshold: float = SAME_MEANING) -> list[ClusteredGroup]:
    """`review_groups`, each group's questions clustered by meaning: one batched `encode` of
    every open question (identical ones, case and spacing aside, are already one)."""
    groups = review_groups(store, entries)
    texts = [item.question for group in groups for item in group.items]
    vectors = encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    clustered: list[ClusteredGroup] = []
    start = 0
    for group in groups:
        end = start + len(group.items)
        clustered.append(ClusteredGroup(group.key, group.title,
                                        cluster_items(group.items, vectors[start:end], threshold)))
        start = end
    return clustered


