"""The event data layer: ROOT ntuples to validated, standardised particle-graph batches.

Modules, in the order data flows through them:

* :mod:`~pmse_graph.data.schema`: ``load_schema`` and the ``Schema`` config object.
* :mod:`~pmse_graph.data.validate`: file checks before reading (``validate_files``).
* :mod:`~pmse_graph.data.reader`: ``iterate_chunks`` streams files into ``EventChunk`` objects.
* :mod:`~pmse_graph.data.chunk`: the columnar ``EventChunk`` with ``select``.
* :mod:`~pmse_graph.data.momenta`, :mod:`~pmse_graph.data.conditions`: four-momenta and the four condition counts.
* :mod:`~pmse_graph.data.standardize`: the robust streaming ``Standardizer``.
* :mod:`~pmse_graph.data.graphs`, :mod:`~pmse_graph.data.padded`: ``build_batch`` and ``to_padded``.
* :mod:`~pmse_graph.data.dataset`: the sharded, shuffled ``EventDataset``.
* :mod:`~pmse_graph.data.summary`: per-file summaries for ``pmse-graph inspect``.

Nothing is imported here, so that ``pmse_graph.data.schema`` loads without torch.
"""
