"""The demo's stage list: every stage parses as a real command, and reruns replace only demo output."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from pmse_graph.cli.main import app
from pmse_graph.demo import MARKER, DemoSettings, _prepare_output, demo_commands
from pmse_graph.errors import PmseError


def test_demo_stages_parse_as_commands(tmp_path: Path):
    group = typer.main.get_command(app)
    commands = demo_commands(tmp_path, DemoSettings())
    names = [args[0] for args in commands]
    assert names[:4] == ["simulate", "inspect", "pretrain", "embed"]
    assert names[-1] == "report"
    for args in commands:
        command = group.get_command(None, args[0])
        assert command is not None, args[0]
        # parsing checks every option name and value type without running the stage
        command.make_context(args[0], list(args[1:]))


def test_rerun_replaces_demo_output(tmp_path: Path):
    out = tmp_path / "demo"
    _prepare_output(out)
    (out / "events").mkdir()
    _prepare_output(out)
    assert (out / MARKER).is_file()
    assert not (out / "events").exists()


def test_foreign_folder_is_not_touched(tmp_path: Path):
    (tmp_path / "results.txt").write_text("keep me")
    with pytest.raises(PmseError, match="not written by the demo"):
        _prepare_output(tmp_path)
    assert (tmp_path / "results.txt").read_text() == "keep me"
