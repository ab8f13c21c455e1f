"""The ``pmse-graph`` command line: one thin typer module per command."""
