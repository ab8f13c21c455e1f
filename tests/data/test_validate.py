"""Tests of file validation: missing branches and trees, truncated and unreadable files."""

from __future__ import annotations

import pytest

from tests.data.ntuple_writer import three_events, write_besiii
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.validate import expand_files, validate_files
from pmse_graph.errors import DataError


@pytest.fixture(scope="module")
def schema():
    return load_schema("besiii")


def test_valid_file_passes(besiii_file, schema):
    reports = validate_files([besiii_file], schema)
    assert reports[0].ok
    assert reports[0].num_entries == 3


def test_second_file_lacks_branch(tmp_path, schema):
    first = write_besiii(tmp_path / "a.root", three_events())
    second = write_besiii(tmp_path / "b.root", three_events(), drop_branches=("emc_latmom",))
    with pytest.raises(DataError) as error:
        list(iterate_chunks([first, second], schema))
    message = str(error.value)
    assert str(second) in message
    assert "'emc_latmom' not found in tree 'evt'" in message
    assert "emc_secmom" in message
    assert str(first) not in message


def test_missing_tree_lists_trees(tmp_path, schema):
    path = write_besiii(tmp_path / "other_tree.root", three_events(), tree="events")
    with pytest.raises(DataError, match=r"Tree 'evt' not found .* trees found: \['events'\]"):
        validate_files([path], schema)


@pytest.mark.parametrize("fraction", [0.3, 0.7, 0.98])
def test_truncated_copy_rejected(tmp_path, schema, fraction):
    valid = write_besiii(tmp_path / "valid.root", three_events() * 50)
    data = valid.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DataError) as error:
        list(iterate_chunks([truncated], schema))
    assert str(truncated) in str(error.value)
    assert "truncated" in str(error.value)


def test_not_a_root_file(tmp_path, schema):
    path = tmp_path / "notes.root"
    path.write_text("these are not ROOT bytes\n" * 10)
    with pytest.raises(DataError, match="Cannot open .*notes.root"):
        validate_files([path], schema)


def test_glob_and_missing_paths(tmp_path, besiii_file):
    assert expand_files(str(tmp_path / "*.root")) == [str(besiii_file)]
    with pytest.raises(DataError, match="No file matches the pattern"):
        expand_files(str(tmp_path / "*.nothing"))
    with pytest.raises(DataError, match="Input file not found"):
        expand_files(str(tmp_path / "absent.root"))


def test_report_without_raising(tmp_path, schema):
    bad = write_besiii(tmp_path / "bad.root", three_events(), drop_branches=("q",))
    reports = validate_files([bad], schema, raise_on_problem=False)
    assert not reports[0].ok
    assert "'q' not found" in reports[0].problems[0]
