"""Entry point of the ``pmse-graph`` command and its single error boundary.

Each command lives in its own module of this package and exposes a function
``register(app)`` that adds itself to the typer application. Errors derived from
:class:`pmse_graph.errors.PmseError` become one red line and exit status 1;
``--verbose`` shows their traceback and turns on debug logging.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from typer.core import TyperGroup

from pmse_graph.errors import PmseError

# Modules of pmse_graph.cli that each define register(app); one line per command.
COMMAND_MODULES: tuple[str, ...] = (
    "inspect",
    "topology",
    "pretrain",
    "simulate",
    "cluster",
    "select",
    "embed",
    "classify",
    "anomaly",
    "report",
    "demo",
    "bench",
)

state: dict[str, bool] = {"verbose": False}


class ErrorBoundaryGroup(TyperGroup):
    """Command group that turns a :class:`PmseError` from any command into one line and exit 1."""

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PmseError as exc:
            if state["verbose"]:
                raise
            typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from exc


app = typer.Typer(
    name="pmse-graph",
    cls=ErrorBoundaryGroup,
    help="Pretrain a graph foundation model on e+e- decay events and use it to cluster, classify and screen events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class _CurrentStderrHandler(logging.StreamHandler):
    """Log handler that writes to whatever ``sys.stderr`` is at emit time.

    A plain StreamHandler keeps the stream it was created with. A test runner
    that swaps ``sys.stderr`` per invocation closes that stream before the next
    log line.
    """

    def __init__(self) -> None:
        super().__init__(stream=sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property ignores it
        pass


@app.callback()
def main_options(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging and full tracebacks on errors."),
) -> None:
    """Configure logging for every command."""
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    # faiss reports at INFO which CPU instruction set its loader tried
    logging.getLogger("faiss.loader").setLevel(logging.DEBUG if verbose else logging.WARNING)
    state["verbose"] = verbose


for _name in COMMAND_MODULES:
    importlib.import_module(f"pmse_graph.cli.{_name}").register(app)

