"""Input sizes of the encoders, read from the data schema: :class:`ModelInputSpec`.

Model input sizes are derived from the schema in one place, so they are never typed twice.
:meth:`ModelInputSpec.from_schema` reads any object with the schema's attribute names, which
keeps this package free of an import of ``pmse_graph.data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pmse_graph.errors import ConfigError


@dataclass(frozen=True)
class ModelInputSpec:
    """Sizes of the batch tensors an encoder consumes.

    Attributes:
        num_node_features: F, columns of ``batch.x`` (standardised continuous features,
            including per-group present flags).
        categorical_cardinalities: number of categories of each column of ``batch.x_cat``,
            each including its "missing" category.
        num_edge_features: E, columns of ``batch.edge_attr`` (pair features).
        num_conditions: columns of ``batch.cond`` (per-event counts).
        feature_groups: group name -> columns of ``batch.x``; the reconstruction loss is
            reported per group.
        categorical_names: one name per categorical column, used in messages and metrics.
        edge_feature_names: one name per column of ``batch.edge_attr`` (the schema's
            ``edge_feature_names``), which selects each column's fixed input scale in
            :class:`~pmse_graph.models.embedding.EdgeEmbedding`; empty leaves every column unscaled.
    """

    num_node_features: int
    categorical_cardinalities: tuple[int, ...]
    num_edge_features: int
    num_conditions: int = 4
    feature_groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    categorical_names: tuple[str, ...] = ()
    edge_feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # the dataclass is frozen, so lists from YAML or JSON become tuples through object.__setattr__
        object.__setattr__(self, "categorical_cardinalities", tuple(int(c) for c in self.categorical_cardinalities))
        object.__setattr__(
            self,
            "feature_groups",
            {str(name): tuple(int(c) for c in columns) for name, columns in dict(self.feature_groups).items()},
        )
        names = tuple(self.categorical_names) or tuple(f"categorical_{i}" for i in range(len(self.categorical_cardinalities)))
        object.__setattr__(self, "categorical_names", names)
        object.__setattr__(self, "edge_feature_names", tuple(str(name) for name in self.edge_feature_names))
        self._validate()

    def _validate(self) -> None:
        if self.num_node_features < 1:
            raise ConfigError(f"num_node_features must be at least 1 (got {self.num_node_features})")
        if self.num_edge_features < 0:
            raise ConfigError(f"num_edge_features must not be negative (got {self.num_edge_features})")
        if self.num_conditions < 0:
            raise ConfigError(f"num_conditions must not be negative (got {self.num_conditions})")
        for name, cardinality in zip(self.categorical_names, self.categorical_cardinalities):
            if cardinality < 1:
                raise ConfigError(f"Categorical feature '{name}' needs at least one category (got {cardinality})")
        if len(self.categorical_names) != len(self.categorical_cardinalities):
            raise ConfigError(
                f"Expected one categorical name per cardinality (got {len(self.categorical_names)} names "
                f"for {len(self.categorical_cardinalities)} cardinalities)"
            )
        if self.edge_feature_names and len(self.edge_feature_names) != self.num_edge_features:
            raise ConfigError(
                f"Expected one edge feature name per edge_attr column (got {len(self.edge_feature_names)} names "
                f"for {self.num_edge_features} columns)"
            )
        for name, columns in self.feature_groups.items():
            outside = [c for c in columns if not 0 <= c < self.num_node_features]
            if outside:
                raise ConfigError(
                    f"Feature group '{name}' lists columns {outside} outside 0..{self.num_node_features - 1}"
                )

    @property
    def num_categorical(self) -> int:
        """C, columns of ``batch.x_cat``."""
        return len(self.categorical_cardinalities)

    @classmethod
    def from_schema(cls, schema: Any) -> "ModelInputSpec":
        """Read the sizes from a data schema (any object with the schema's attribute names).

        Raises:
            ConfigError: if the schema lacks one of the required attributes.
        """
        required = ("num_node_features", "categorical_cardinalities", "num_edge_features")
        missing = [name for name in required if not hasattr(schema, name)]
        if missing:
            raise ConfigError(
                f"Schema object {type(schema).__name__} is missing attributes {missing}. "
                "Pass a pmse_graph.data.schema.Schema"
            )
        return cls(
            num_node_features=int(schema.num_node_features),
            categorical_cardinalities=tuple(schema.categorical_cardinalities),
            num_edge_features=int(schema.num_edge_features),
            num_conditions=int(getattr(schema, "num_conditions", 4)),
            feature_groups=dict(getattr(schema, "feature_groups", {}) or {}),
            categorical_names=tuple(getattr(schema, "categorical_names", ()) or ()),
            edge_feature_names=tuple(getattr(schema, "edge_feature_names", ()) or ()),
        )
