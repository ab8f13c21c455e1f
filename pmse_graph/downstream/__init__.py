"""Uses of a pretrained encoder: event embeddings, clustering, classification, anomaly scores.

Modules:
    embeddings: the on-disk embedding format (:class:`EmbeddingWriter`, :class:`EmbeddingStore`).
    kmeans: flat and two-level k-means with faiss, streamed assignment.
    two_level: two-level k-means and the search through its coarse groups.
    neighbours: exact or IVF nearest-neighbour search shared by the other modules.
    density: HDBSCAN (fast_hdbscan) on a subsample; the other events take their nearest
        fitted event's cluster within that cluster's reach.
    cluster_metrics: cluster quality against the truth classes.
    plots: t-SNE picture of the largest classes and shared figure helpers.
"""

from pmse_graph.downstream.embeddings import EmbeddingStore, EmbeddingWriter

__all__ = ["EmbeddingStore", "EmbeddingWriter"]
