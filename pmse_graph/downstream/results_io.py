"""Input and output helpers of the classification and anomaly commands.

* :func:`read_embeddings`: all vectors and labels of an embedding store in memory, with
  non-finite rows rejected by event id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pmse_graph.downstream.embeddings import EmbeddingStore, describe_event_ids, nonfinite_rows
from pmse_graph.errors import DataError


@dataclass
class EmbeddingArrays:
    """Embeddings and labels of every event of a store, in store order.

    ``metadata`` is the store's index metadata (the embed command's run folder, files and
    topology tables).

    Shapes:
        vectors: (num_events, D) float32; event_id, y, y_fs: (num_events,) int64.
    """

    vectors: np.ndarray
    event_id: np.ndarray
    y: np.ndarray
    y_fs: np.ndarray
    metadata: dict = field(default_factory=dict)


def read_embeddings(path: str | Path) -> EmbeddingArrays:
    """Load an embedding store (folder or ``.npy`` file) into memory.

    Raises:
        DataError: the store is missing, empty, has duplicate event ids, or has rows with NaN or
            infinite values (their event ids are listed).
    """
    # NOTE: everything is loaded at once: 3M events of dimension 128 take 1.5 GB. The probe and the
    # kNN reference need the labelled half in memory anyway, but scoring could stream the shards.
    store = EmbeddingStore.open(path)
    if store.num_events == 0:
        raise DataError(f"{path}: the embedding store has no events")
    vectors, labels = store.load()
    event_id = labels["event_id"].to_numpy(dtype=np.int64)
    bad = nonfinite_rows(vectors)
    if len(bad):
        raise DataError(f"{path}: {len(bad)} embedding rows contain NaN or infinity, event ids {describe_event_ids(event_id[bad])}. Embed these events again or remove them")
    unique, counts = np.unique(event_id, return_counts=True)
    if len(unique) != len(event_id):
        raise DataError(f"{path}: event ids must be unique, but {describe_event_ids(unique[counts > 1])} occur more than once")
    return EmbeddingArrays(vectors=vectors, event_id=event_id, y=labels["y"].to_numpy(dtype=np.int64), y_fs=labels["y_fs"].to_numpy(dtype=np.int64), metadata=store.metadata)
