"""Tests of the provenance line that benchmark sections carry."""

from __future__ import annotations

import os
import re

from pmse_graph.benchmark.provenance import git_commit, machine_description, provenance


def test_machine_description_names_cores_and_cpu():
    machine = machine_description()
    assert machine["cores"] == os.cpu_count()
    assert machine["cpu"]
    assert machine["gpu"]


def test_git_commit_is_hash_or_marker():
    commit = git_commit()
    assert commit == "no commit" or re.fullmatch(r"[0-9a-f]{40}(\+changes)?", commit)


def test_provenance_line_lists_everything():
    line = provenance()
    assert f"{os.cpu_count()} cores" in line
    assert ", GPU " in line
    assert ", commit " in line
