"""TopoAna-compatible decay-tree labels of MC-truth events and their ranked class table.

``names`` maps PDG codes to TopoAna's particle names, ``tree`` builds the decay-tree
and final-state strings, ``table`` ranks classes by event count, and ``reader``
counts the classes of MC-truth ROOT files chunk by chunk.
"""

from pmse_graph.topology.names import ParticleNames
from pmse_graph.topology.reader import count_topologies
from pmse_graph.topology.table import TopologyCounter, TopologyTable, rank_order
from pmse_graph.topology.tree import (
    RecordError,
    TopologyLabels,
    decay_tree_string,
    final_state_string,
    label_events,
    label_flat,
)

__all__ = [
    "ParticleNames",
    "RecordError",
    "TopologyCounter",
    "TopologyLabels",
    "TopologyTable",
    "count_topologies",
    "decay_tree_string",
    "final_state_string",
    "label_events",
    "label_flat",
    "rank_order",
]
