"""Event schema: which ROOT branches become node features, labels and conditions.

A schema is a YAML file in ``configs/schema/`` validated into :class:`Schema`.
It names the tree, the particle collections whose entries become the nodes of
one graph (BESIII has one, ``tracks``; the HZZ sample has four), and for each
node feature its branch in every collection, its group and its meaning.

The node feature matrix ``x`` holds, in schema order, the continuous features
of every group followed by one "present" flag per group that declares one.
Categorical features (charge, PID type) go to ``x_cat`` as category indices,
with one extra index for a missing value. A value equal to the schema's
``missing_value`` (9999 in BESIII ntuples) marks a feature as missing, so it
never reaches the model as a number.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from pmse_graph.config import StrictModel, load_config
from pmse_graph.errors import ConfigError
from pmse_graph.resources import configs_dir

SCHEMA_DIR = configs_dir() / "schema"
"""Folder of the shipped schema files (``besiii.yaml``, ``hzz.yaml``)."""

CONDITION_NAMES = ("charged", "neutral", "good_charged", "good_neutral")
"""Order of the four per-event condition counts in ``cond``."""


class FeatureSpec(StrictModel):
    """One per-particle quantity read from a jagged (or fixed-size) branch."""

    name: str
    group: str
    meaning: str = ""
    kind: Literal["continuous", "categorical"] = "continuous"
    branches: dict[str, str] = Field(default_factory=dict, description="collection name -> branch name")
    fill: float | None = Field(None, description="raw value for collections without a branch; None marks the feature missing there")
    categories: list[int] = Field(default_factory=list, description="allowed values of a categorical feature")
    transform: Literal["none", "log"] = Field("none", description="'log' applies sign(v) * log1p(|v|) before standardisation")

    @model_validator(mode="after")
    def _check_categories(self) -> "FeatureSpec":
        if self.kind == "categorical" and not self.categories:
            raise ValueError(f"categorical feature '{self.name}' needs a non-empty 'categories' list")
        if self.kind == "categorical" and self.transform != "none":
            raise ValueError(f"categorical feature '{self.name}' cannot have a transform")
        return self


class GroupSpec(StrictModel):
    """A sub-detector group of features, used for presence flags and per-group losses."""

    name: str
    presence_flag: bool = True
    meaning: str = ""


class CollectionSpec(StrictModel):
    """A particle collection; its entries in one event become nodes of that event's graph."""

    name: str


class MomentumSpec(StrictModel):
    """Where the pair-feature four-momenta come from, as names of node features.

    With ``energy`` set, the four-momentum is (px, py, pz, E) as stored. Otherwise
    E is computed from the mass hypothesis: ``charged_mass`` where ``charge`` is
    non-zero, ``neutral_mass`` elsewhere. With ``shower_energy`` and
    ``shower_position`` set, a neutral particle (or one without momentum) gets
    the shower energy along the direction from the origin to the shower position.
    """

    px: str
    py: str
    pz: str
    energy: str | None = None
    charge: str | None = None
    charged_mass: float = 0.13957039
    neutral_mass: float = 0.0
    shower_energy: str | None = None
    shower_position: tuple[str, str, str] | None = None
    shower_time: str | None = None


class SelectionSpec(StrictModel):
    """Feature names and cuts of the good-track and good-photon selections (BESIII defaults).

    ``detector`` names the detector configuration (``configs/detector/<name>.yaml``
    or a path). Its solenoid field, EMC barrel radius and endcap z place each
    charged track on the EMC as the detector response does, and the photon
    isolation angle is measured from that impact point. Without it the isolation
    uses the track's momentum direction.
    """

    vz: str | None = None
    vr: str | None = None
    max_abs_vz: float = 10.0
    max_vr: float = 1.0
    max_abs_cos_charged: float = 0.93
    barrel_max_abs_cos: float = 0.80
    barrel_min_energy: float = 0.025
    endcap_abs_cos: tuple[float, float] = (0.86, 0.92)
    endcap_min_energy: float = 0.050
    time_window: tuple[float, float] = (0.0, 14.0)
    isolation_deg: float = 10.0
    detector: str | None = Field(None, description="detector config giving the field and EMC geometry for track impact points")


class Schema(StrictModel):
    """A validated event schema.

    Attributes (derived):
        node_feature_names: columns of ``x``: continuous features, then ``<group>_present`` flags.
        num_node_features: F, the number of columns of ``x``.
        categorical_names: columns of ``x_cat``.
        categorical_cardinalities: categories per column of ``x_cat``, the last one meaning missing.
        num_edge_features: E, the number of columns of ``edge_attr``.
        feature_groups: group name -> columns of ``x`` (its features and its flag).
    """

    name: str
    tree: str
    missing_value: float | None = Field(9999.0, description="sentinel written where a sub-detector has no information")
    collections: list[CollectionSpec]
    groups: list[GroupSpec]
    features: list[FeatureSpec]
    momentum: MomentumSpec
    event_number: str | None = Field(None, description="branch with the event number")
    run_number: str | None = Field(None, description="branch with the run number")
    labels: dict[Literal["tree", "final_state"], str] = Field(default_factory=dict)
    conditions: dict[Literal["charged", "neutral", "good_charged", "good_neutral"], str] = Field(default_factory=dict)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)

    num_conditions: int = Field(4, frozen=True)

    @model_validator(mode="after")
    def _check_references(self) -> "Schema":
        group_names = [group.name for group in self.groups]
        collection_names = [collection.name for collection in self.collections]
        feature_names = [feature.name for feature in self.features]
        if len(set(feature_names)) != len(feature_names):
            raise ValueError("feature names must be unique")
        if not self.collections:
            raise ValueError("at least one collection is required")
        for feature in self.features:
            if feature.group not in group_names:
                raise ValueError(f"feature '{feature.name}' names unknown group '{feature.group}' (groups: {group_names})")
            unknown = sorted(set(feature.branches) - set(collection_names))
            if unknown:
                raise ValueError(f"feature '{feature.name}' maps unknown collections {unknown} (collections: {collection_names})")
        for collection in collection_names:
            if not any(collection in feature.branches for feature in self.features):
                raise ValueError(f"collection '{collection}' has no branch in any feature, so its particle count is unknown")
        momentum = self.momentum
        referenced = [momentum.px, momentum.py, momentum.pz, momentum.energy, momentum.charge,
                      momentum.shower_energy, momentum.shower_time, self.selection.vz, self.selection.vr,
                      *(momentum.shower_position or ())]
        for name in referenced:
            if name is not None and name not in feature_names:
                raise ValueError(f"momentum/selection field names '{name}', which is not a feature (features: {feature_names})")
        return self

    def feature(self, name: str) -> FeatureSpec:
        """Return the feature called ``name``."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    @cached_property
    def continuous_names(self) -> list[str]:
        """Names of the continuous features, in ``x`` column order."""
        return [feature.name for feature in self.features if feature.kind == "continuous"]

    @cached_property
    def flag_groups(self) -> list[str]:
        """Groups that get a presence flag: those with presence_flag and a continuous feature."""
        continuous_groups = {feature.group for feature in self.features if feature.kind == "continuous"}
        return [group.name for group in self.groups if group.presence_flag and group.name in continuous_groups]

    @cached_property
    def node_feature_names(self) -> list[str]:
        """Columns of ``x``."""
        return self.continuous_names + [f"{group}_present" for group in self.flag_groups]

    @property
    def num_node_features(self) -> int:
        """F, the width of ``x``."""
        return len(self.node_feature_names)

    @cached_property
    def categorical_names(self) -> list[str]:
        """Columns of ``x_cat``."""
        return [feature.name for feature in self.features if feature.kind == "categorical"]

    @cached_property
    def categorical_cardinalities(self) -> list[int]:
        """Number of categories of each ``x_cat`` column, including the missing category (the last index)."""
        return [len(feature.categories) + 1 for feature in self.features if feature.kind == "categorical"]

    @property
    def has_shower_pairs(self) -> bool:
        """True when the pair features include the EMC shower distance and time difference."""
        return self.momentum.shower_position is not None and self.momentum.shower_time is not None

    @cached_property
    def edge_feature_names(self) -> list[str]:
        """Columns of ``edge_attr``."""
        names = ["log_m2", "cos_angle", "sin_angle", "log_kt", "log_z"]
        if self.has_shower_pairs:
            names += ["shower_log_distance", "shower_time_difference", "both_showers"]
        return names

    @property
    def num_edge_features(self) -> int:
        """E, the width of ``edge_attr``."""
        return len(self.edge_feature_names)

    @cached_property
    def feature_groups(self) -> dict[str, list[int]]:
        """Group name -> columns of ``x`` holding its continuous features and its presence flag."""
        columns: dict[str, list[int]] = {group.name: [] for group in self.groups}
        for column, name in enumerate(self.continuous_names):
            columns[self.feature(name).group].append(column)
        offset = len(self.continuous_names)
        for index, group in enumerate(self.flag_groups):
            columns[group].append(offset + index)
        return {group: cols for group, cols in columns.items() if cols}

    def branches_of(self, collection: str) -> dict[str, str]:
        """Feature name -> branch name for one collection."""
        return {feature.name: feature.branches[collection] for feature in self.features if collection in feature.branches}

    def event_branches(self) -> list[str]:
        """Per-event branches the schema reads (ids, labels, stored conditions)."""
        names = [self.event_number, self.run_number, *self.labels.values(), *self.conditions.values()]
        return [name for name in names if name is not None]

    def all_branches(self) -> list[str]:
        """Every branch the schema reads, without duplicates, in a stable order."""
        names = [branch for feature in self.features for branch in feature.branches.values()]
        return list(dict.fromkeys(names + self.event_branches()))


def load_schema(name_or_path: str | os.PathLike[str]) -> Schema:
    """Load a shipped schema by name (``"besiii"``, ``"hzz"``) or any schema YAML file by path.

    Raises:
        ConfigError: the name is unknown, the file is missing or it fails validation.
    """
    text = str(name_or_path)
    candidate = Path(text)
    if not candidate.suffix and not candidate.exists():
        candidate = SCHEMA_DIR / f"{text}.yaml"
        if not candidate.is_file():
            shipped = sorted(path.stem for path in SCHEMA_DIR.glob("*.yaml"))
            raise ConfigError(f"Unknown schema '{text}': expected one of {shipped} or a path to a schema YAML file")
    return load_config(Schema, candidate)
