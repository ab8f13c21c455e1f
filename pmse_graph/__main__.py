"""Allow ``python -m pmse_graph`` as a synonym of the ``pmse-graph`` command."""

from pmse_graph.cli.main import app

app(prog_name="pmse-graph")
