"""pmse-graph: a graph foundation model for e+e- collider decay events.

Subpackages follow the data flow: ``data`` (ROOT ntuples to particle graphs),
``simulation`` (the built-in J/psi generator), ``topology`` (TopoAna-style
labels), ``models``, ``pretraining`` and ``downstream``; ``cli`` wires them into
the ``pmse-graph`` command.
"""

__version__ = "0.1.0"
