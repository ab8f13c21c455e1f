"""Decay-tree strings for class ids: the ``topology.csv`` that names the classes of the outputs.

``pmse-graph simulate`` writes ``topology.csv`` beside its ROOT files. Its column ``id`` is the
decay-tree class id ``y`` of the embeddings. :func:`topology_tables_beside` finds those tables
for the files being embedded (``embed`` stores them in the index metadata), and
:func:`load_class_names` opens the table given on the command line or, by default, the first one
recorded in the embeddings. Without a table the outputs keep bare class ids.

* :class:`ClassNames`: class id to tree string, with a shortened form for legends and tables.
* :func:`add_tree_columns`: put a tree column after each class-id column of a table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmse_graph.errors import DataError
from pmse_graph.topology.table import TopologyTable

logger = logging.getLogger(__name__)

TOPOLOGY_NAME = "topology.csv"
METADATA_KEY = "topology_tables"
# Legends and report cells cut tree strings to this many characters.
SHORT_TREE_CHARACTERS = 48


def topology_tables_beside(files: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Return the ``topology.csv`` files found in the folders of ``files``, resolved, first-seen order."""
    found: list[str] = []
    for folder in dict.fromkeys(Path(name).resolve().parent for name in files):
        candidate = folder / TOPOLOGY_NAME
        if candidate.is_file():
            found.append(str(candidate))
    return found


def short_tree(tree: str, *, limit: int = SHORT_TREE_CHARACTERS) -> str:
    """Drop the ``J/psi --> `` head of a tree string and cut it to ``limit`` characters."""
    text = tree.split("-->", 1)[1].strip() if tree.startswith("J/psi -->") else tree
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


@dataclass(frozen=True)
class ClassNames:
    """Tree string of each decay-tree class id, read from one topology table.

    Attributes:
        source: the table's path.
        trees: class id to tree string.
    """

    source: str
    trees: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ClassNames:
        """Read ``path`` with :meth:`TopologyTable.read_csv`.

        Raises:
            DataError: the file is missing or lacks topology columns.
        """
        frame = TopologyTable.read_csv(path).to_frame()
        return cls(str(Path(path)), dict(zip(frame["id"].astype(int), frame["tree"].astype(str))))

    def tree(self, class_id: int) -> str:
        """Tree string of ``class_id``; ids the table does not hold give ``""``."""
        return self.trees.get(int(class_id), "")

    def trees_of(self, class_ids: Sequence[int] | np.ndarray) -> list[str]:
        """Tree strings of each id in ``class_ids`` (``""`` for ids outside the table)."""
        return [self.tree(value) for value in np.asarray(class_ids).ravel()]

    def label(self, class_id: int) -> str:
        """Short legend label: the shortened tree, or ``class ID`` when the table lacks it."""
        tree = self.tree(class_id)
        return short_tree(tree) if tree else f"class {int(class_id)}"


def load_class_names(topology: str | os.PathLike[str] | None, metadata: Mapping[str, Any] | None = None) -> ClassNames | None:
    """Open the topology table given, else the first one recorded in embedding metadata.

    Args:
        topology: the ``--topology`` CSV; when given it must exist.
        metadata: the embeddings' index metadata; its ``topology_tables`` list is the default.

    Returns:
        The class names, or None when no table was given or recorded (a recorded table that has
        since been removed is logged and skipped).

    Raises:
        DataError: the ``--topology`` file is missing or is not a topology table.
    """
    if topology is not None:
        return ClassNames.read(topology)
    recorded = list((metadata or {}).get(METADATA_KEY) or [])
    for path in recorded:
        if Path(path).is_file():
            if len(recorded) > 1:
                logger.info("the embeddings record %d topology tables; naming classes with the first, %s", len(recorded), path)
            return ClassNames.read(path)
        logger.info("topology table %s recorded in the embeddings no longer exists; pass --topology to name the classes", path)
    return None


def add_tree_columns(table: pd.DataFrame, names: ClassNames | None, columns: Mapping[str, str]) -> pd.DataFrame:
    """Insert a tree-string column right after each class-id column; unchanged without names.

    Args:
        table: a table with class-id columns.
        names: the class names, or None.
        columns: class-id column to tree column, for example ``{"true_class": "true_tree"}``.

    Raises:
        DataError: a class-id column named in ``columns`` is not in ``table``.
    """
    if names is None:
        return table
    table = table.copy()
    for id_column, tree_column in columns.items():
        if id_column not in table.columns:
            raise DataError(f"Column '{id_column}' not found, so its classes cannot be named (found {list(table.columns)})")
        values = names.trees_of(table[id_column].to_numpy())
        table.insert(table.columns.get_loc(id_column) + 1, tree_column, values)
    return table
