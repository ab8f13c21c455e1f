"""The side-by-side encoder benchmark behind ``pmse-graph bench``.

:func:`pmse_graph.benchmark.suite.run_benchmark` runs it and
:func:`pmse_graph.benchmark.record.write_results` writes its files and markdown summary.
"""
