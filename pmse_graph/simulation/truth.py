"""The MC-truth record that the generator hands to the detector response.

A :class:`TruthChunk` contains many events at once as flat particle arrays with
per-event offsets (compressed sparse rows), so every stage after the generator
works on whole columns. The record follows BESIII's truth convention: in each
event the J/psi comes first with mother index -1, and the mother indices count
from the start of the event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TruthChunk:
    """Generated events of one chunk, particles flattened over events.

    Attributes:
        event_id: event numbers, shape ``(num_events,)`` int64.
        tree_id: decay-tree class ids ranked by frequency, shape ``(num_events,)`` int32.
        final_state_id: final-state class ids, shape ``(num_events,)`` int32.
        offsets: start of each event in the particle arrays, shape ``(num_events + 1,)`` int64.
        pdg: PDG codes, shape ``(num_particles,)`` int32; -22 marks a PHOTOS radiation photon.
        mother: mother index within the event, -1 for the J/psi, shape ``(num_particles,)`` int32.
        p4: lab-frame four-momenta ``(px, py, pz, E)`` in GeV, shape ``(num_particles, 4)`` float64.
        vertex: production vertex ``(x, y, z)`` in cm, shape ``(num_particles, 3)`` float64.
        is_final: True for particles that reach the detector undecayed (e, mu, pi+-, K+-, p,
            n, KL, photons; neutrinos are final but invisible), shape ``(num_particles,)`` bool.
    """

    event_id: np.ndarray
    tree_id: np.ndarray
    final_state_id: np.ndarray
    offsets: np.ndarray
    pdg: np.ndarray
    mother: np.ndarray
    p4: np.ndarray
    vertex: np.ndarray
    is_final: np.ndarray

    @property
    def num_events(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def num_particles(self) -> int:
        return int(self.pdg.shape[0])

    def event_index(self) -> np.ndarray:
        """Return the event each particle belongs to, shape ``(num_particles,)`` int64."""
        counts = np.diff(self.offsets)
        return np.repeat(np.arange(self.num_events, dtype=np.int64), counts)
