"""Tests of ``pmse-graph embed`` through the typer runner."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from pmse_graph.cli.main import app
from pmse_graph.downstream.embeddings import EmbeddingStore
from tests.downstream.pretrained_run import shared_run, write_topology
from tests.pretraining.generated_ntuples import write_generated

runner = CliRunner()


def test_embed_command(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "emb"), "--batch-size", "64", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    store = EmbeddingStore.open(tmp_path / "emb")
    assert f"Embedded {store.num_events} events (dimension 16)" in result.output
    assert store.num_events == 240


def test_embed_errors_are_one_line(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    result = runner.invoke(app, ["embed", "--run", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "emb")])
    assert result.exit_code == 1
    assert "not a pretraining run folder" in result.output

    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "emb"), "--split", "holdout"])
    assert result.exit_code == 1
    assert "Invalid split 'holdout'" in result.output


def test_embed_records_topology_table(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    folder = tmp_path / "sim"
    folder.mkdir()
    copy = folder / data.name
    shutil.copyfile(data, copy)
    table = write_topology(folder / "topology.csv")
    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(copy), "--out", str(tmp_path / "emb"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert EmbeddingStore.open(tmp_path / "emb").metadata["topology_tables"] == [str(table.resolve())]


def test_embed_full_folder_before_checkpoint(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    out = tmp_path / "emb"
    out.mkdir()
    (out / "index.json").write_text("{}")
    # a checkpoint that does not exist: the folder check must come first
    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(data), "--out", str(out), "--checkpoint", str(tmp_path / "none.pt")])
    assert result.exit_code == 1
    assert "already contains embeddings" in result.output
    assert "--overwrite" in result.output
    assert "none.pt" not in result.output


def test_embed_empty_tree_no_index(tmp_path_factory, tmp_path):
    _, run_dir = shared_run(tmp_path_factory)
    empty = write_generated(tmp_path / "empty.root", num_events=0)
    out = tmp_path / "emb"
    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(empty), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 1
    assert "No events of the 'all' split" in result.output
    assert "--split all" not in result.output
    assert not (out / "index.json").exists()
    # no shard is left either, so a later embed into the folder is not rejected
    assert not list(out.glob("shard-*"))
