"""Robust per-feature standardisation of the continuous node features.

:class:`Standardizer` makes one streaming pass over chunks. Each feature keeps a
fixed-size uniform sample of its non-missing values (reservoir sampling), so
memory does not grow with the dataset. The centre is the sample median and the
scale the interquartile range divided by 1.349, which equals the standard
deviation for a normal distribution. Features the schema marks ``transform: log``
get sign(v) * log1p(|v|) first. Applying the standardiser clips the result to
``[-clip, clip]`` and writes 0 (the centre) for missing values.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from pmse_graph.config import atomic_write_text
from pmse_graph.data.chunk import EventChunk
from pmse_graph.data.schema import Schema
from pmse_graph.errors import DataError

logger = logging.getLogger(__name__)

IQR_TO_SIGMA = 1.349
"""Interquartile range of a unit normal distribution."""

MIN_SCALE = 1e-6
FORMAT_VERSION = 1


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """Return sign(v) * log(1 + |v|), defined for every finite v."""
    return np.sign(values) * np.log1p(np.abs(values))


class Standardizer:
    """Robust centre and scale per continuous feature, fitted in one streaming pass.

    Args:
        feature_names: continuous feature names, in ``EventChunk.continuous`` column order.
        log_features: names of features to transform with signed log1p before scaling.
        clip: standardised values are clipped to ``[-clip, clip]`` (default 8).
        sample_size: values kept per feature for the quantiles (default 200,000).
        seed: seed of the reservoir sampling (default 0).
    """

    def __init__(self, *, feature_names: list[str], log_features: Iterable[str] = (), clip: float = 8.0,
                 sample_size: int = 200_000, seed: int = 0) -> None:
        if clip <= 0:
            raise ValueError(f"Expected a positive clip value (got {clip})")
        self.feature_names = list(feature_names)
        self.log_features = [name for name in self.feature_names if name in set(log_features)]
        self.clip = float(clip)
        self.sample_size = int(sample_size)
        self._log_mask = np.array([name in self.log_features for name in self.feature_names], dtype=bool)
        self._rng = np.random.default_rng(seed)
        self._samples = [np.empty(0, dtype=np.float32) for _ in self.feature_names]
        self._seen = np.zeros(len(self.feature_names), dtype=np.int64)
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @classmethod
    def from_schema(cls, schema: Schema, **kwargs) -> "Standardizer":
        """Create an unfitted standardiser for the continuous features of ``schema``."""
        log_features = [feature.name for feature in schema.features if feature.transform == "log"]
        return cls(feature_names=schema.continuous_names, log_features=log_features, **kwargs)

    @property
    def fitted(self) -> bool:
        """True once :meth:`finalize` or :meth:`load` set the centre and scale."""
        return self.center is not None

    def _transform_raw(self, continuous: np.ndarray) -> np.ndarray:
        values = continuous.astype(np.float32, copy=True)
        if self._log_mask.any():
            values[:, self._log_mask] = signed_log1p(values[:, self._log_mask])
        return values

    def update(self, chunk: EventChunk) -> None:
        """Add the non-missing values of one chunk to the per-feature samples."""
        values = self._transform_raw(chunk.continuous)
        for column in range(len(self.feature_names)):
            incoming = values[~chunk.missing[:, column], column]
            self._samples[column] = self._reservoir(self._samples[column], incoming, int(self._seen[column]))
            self._seen[column] += len(incoming)

    def _reservoir(self, sample: np.ndarray, incoming: np.ndarray, seen: int) -> np.ndarray:
        """Algorithm R on a block: each value seen so far stays in the sample with equal probability."""
        room = max(self.sample_size - len(sample), 0)
        if room:
            filled = incoming[:room]
            sample = np.concatenate([sample, filled])
            incoming = incoming[room:]
            seen += len(filled)
        if len(incoming) == 0:
            return sample
        position = seen + np.arange(len(incoming), dtype=np.int64)
        slot = self._rng.integers(0, position + 1)
        accepted = slot < self.sample_size
        sample[slot[accepted]] = incoming[accepted]
        return sample

    def finalize(self) -> "Standardizer":
        """Compute centre and scale from the samples; features never seen get centre 0, scale 1."""
        center = np.zeros(len(self.feature_names), dtype=np.float64)
        scale = np.ones(len(self.feature_names), dtype=np.float64)
        for column, sample in enumerate(self._samples):
            if len(sample) == 0:
                logger.warning("feature '%s' was missing everywhere in the fit; using centre 0 and scale 1", self.feature_names[column])
                continue
            q25, median, q75 = np.quantile(sample.astype(np.float64), [0.25, 0.5, 0.75])
            spread = (q75 - q25) / IQR_TO_SIGMA
            if spread < MIN_SCALE:
                spread = float(np.std(sample))
            center[column] = median
            scale[column] = spread if spread >= MIN_SCALE else 1.0
        self.center, self.scale = center.astype(np.float32), scale.astype(np.float32)
        return self

    def fit(self, chunks: Iterable[EventChunk], *, max_events: int | None = None, progress: bool = False) -> "Standardizer":
        """Update with every chunk (up to ``max_events`` events), then finalize."""
        events = 0
        for chunk in tqdm(chunks, desc="fitting standardiser", unit="chunk", disable=not progress):
            if max_events is not None and events + chunk.num_events > max_events:
                chunk = chunk.select(np.arange(max_events - events))
            self.update(chunk)
            events += chunk.num_events
            if max_events is not None and events >= max_events:
                break
        return self.finalize()

    def transform(self, continuous: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Standardise and clip raw features; missing values become 0.

        Shapes:
            continuous: (num_nodes, Fc) raw values; missing: (num_nodes, Fc) bool;
            returns (num_nodes, Fc) float32.
        """
        if not self.fitted:
            raise DataError("The standardiser is not fitted: call fit() or load() first")
        values = (self._transform_raw(continuous) - self.center) / self.scale
        np.clip(values, -self.clip, self.clip, out=values)
        values[missing] = 0.0
        return values

    def check_schema(self, schema: Schema) -> None:
        """Raise :class:`DataError` unless the standardiser covers exactly the schema's continuous features."""
        if schema.continuous_names != self.feature_names:
            raise DataError(
                f"The standardiser was fitted on features {self.feature_names}, but schema '{schema.name}' has "
                f"{schema.continuous_names}. Fit a new standardiser for this schema."
            )

    def to_dict(self) -> dict:
        """JSON-ready content: feature names, transforms, centre, scale and clip."""
        if not self.fitted:
            raise DataError("The standardiser is not fitted: call fit() before saving it")
        return {
            "format_version": FORMAT_VERSION,
            "clip": self.clip,
            "features": [
                {"name": name, "transform": "log" if name in self.log_features else "none",
                 "center": float(c), "scale": float(s), "values_seen": int(n)}
                for name, c, s, n in zip(self.feature_names, self.center, self.scale, self._seen)
            ],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the standardiser as JSON through a temporary file and a rename."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Standardizer":
        """Read a standardiser written by :meth:`save`."""
        path = Path(path)
        try:
            content = json.loads(path.read_text())
            features = content["features"]
            standardizer = cls(feature_names=[f["name"] for f in features],
                               log_features=[f["name"] for f in features if f["transform"] == "log"],
                               clip=content["clip"])
            standardizer.center = np.array([f["center"] for f in features], dtype=np.float32)
            standardizer.scale = np.array([f["scale"] for f in features], dtype=np.float32)
            standardizer._seen = np.array([f.get("values_seen", 0) for f in features], dtype=np.int64)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"Cannot read the standardiser from {path}: {type(exc).__name__}: {exc}") from exc
        return standardizer
