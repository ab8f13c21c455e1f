"""BESIII-like detector response of the event generator, one module per sub-detector.

``mdc`` (tracking), ``pid`` (dE/dx and TOF), ``emc``, ``emc_shape`` and ``neutral``
(calorimeter), ``muc`` (muon counter) and ``selection`` (good tracks and photons),
assembled by :class:`DetectorResponse` into the branches of ``branches``, with the
parameters of ``configs/detector/besiii.yaml``.
"""

from pmse_graph.simulation.detector.config import DetectorConfig, default_config_path, load_detector_config
from pmse_graph.simulation.detector.branches import COUNT_BRANCHES, MISSING, TRACK_BRANCHES
from pmse_graph.simulation.detector.response import DetectorResponse

__all__ = [
    "COUNT_BRANCHES",
    "MISSING",
    "TRACK_BRANCHES",
    "DetectorConfig",
    "DetectorResponse",
    "default_config_path",
    "load_detector_config",
]
