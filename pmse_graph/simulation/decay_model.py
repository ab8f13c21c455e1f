"""Decay-tree templates: which complete decay tree each generated event gets.

A *template* is one decay tree without kinematics: PDG codes and mother indices, the J/psi
first with mother -1, every mother before its daughters, down to the particles that reach the
detector. :class:`DecayModel` samples a template index per event and keeps the templates it
has met in a growing, deduplicated :class:`TemplateCatalogue`.

Sampling is vectorised per species rather than per event. For all ``n`` particles of one
species it draws a *daughter list*: a DEC mode, that mode with a PHOTOS photon, or a set of
hadrons from the string-hadronisation remainder. It then samples each daughter species of the
whole batch in one recursive call. Finally it deduplicates the integer rows
``(daughter list, daughter subtree ids...)`` with :func:`numpy.unique`. Python loops run over
species and over distinct subtrees only, never over events.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pmse_graph.simulation.decfile import PHOTOS_PDG, STABLE_PDG, DecayTable, ParticleProperties, load_dec_file

if TYPE_CHECKING:
    from pmse_graph.simulation.remainder import PhotosConfig, RemainderModel

logger = logging.getLogger(__name__)

REMAINDER_MODEL_NAME = "REMAINDER"
"""Model name of a vertex whose daughters came from the remainder model (decay them by phase space)."""

LEAF_MODEL_NAME = ""
"""Model name of a particle that does not decay in the template."""


@dataclass(frozen=True)
class Template:
    """One complete decay tree without kinematics.

    Attributes:
        pdg: PDG codes, shape ``(num_particles,)`` int32; -22 marks a PHOTOS radiation photon.
        mother: index of the mother within the template, -1 for the root, shape ``(num_particles,)`` int32.
        model: DEC model of the decay *of* each particle (``""`` for particles that do not decay),
            length ``num_particles``.
        mass: nominal masses in GeV, shape ``(num_particles,)`` float64.
        width: total widths in GeV, shape ``(num_particles,)`` float64.
        max_dm: Breit-Wigner cut-offs in GeV, shape ``(num_particles,)`` float64.
    """

    pdg: np.ndarray
    mother: np.ndarray
    model: tuple[str, ...]
    mass: np.ndarray
    width: np.ndarray
    max_dm: np.ndarray

    @property
    def is_final(self) -> np.ndarray:
        """True for particles without daughters in the template, shape ``(num_particles,)`` bool."""
        has_daughters = np.zeros(self.pdg.shape[0], dtype=bool)
        has_daughters[self.mother[self.mother >= 0]] = True
        return ~has_daughters

    def __len__(self) -> int:
        return int(self.pdg.shape[0])


class TemplateCatalogue:
    """Growing list of distinct templates; an index, once given, never changes."""

    def __init__(self) -> None:
        self._templates: list[Template] = []
        self._index: dict[object, int] = {}

    def __len__(self) -> int:
        return len(self._templates)

    def __getitem__(self, index: int) -> Template:
        return self._templates[index]

    def __iter__(self):
        return iter(self._templates)

    def add(self, key: object, template: Template) -> int:
        """Return the index of ``key``, storing ``template`` under it when the key is new."""
        index = self._index.get(key)
        if index is None:
            index = len(self._templates)
            self._index[key] = index
            self._templates.append(template)
        return index

    def lookup(self, key: object) -> int | None:
        """Return the index stored for ``key``, or None."""
        return self._index.get(key)


@dataclass
class _Subtree:
    pdg: list[int]
    mother: list[int]
    model: list[str]


@dataclass
class _Species:
    """Decay options of one unstable species, with their cumulative probabilities."""

    cumulative: np.ndarray
    list_ids: np.ndarray  # daughter list per option; -1 marks the remainder option
    explicit_sets: frozenset = frozenset()
    subtrees: dict[tuple[int, ...], int] = field(default_factory=dict)
    trees: list[_Subtree] = field(default_factory=list)


_HASH_MULTIPLIERS = np.random.default_rng(20261204).integers(1, 2**62, size=64, dtype=np.int64) | 1


def unique_rows_fast(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct rows of an int64 matrix and each row's index among them.

    Rows are hashed to one int64 each (multiply-add with wrap-around) because
    :func:`numpy.unique` on one column avoids the slow lexicographic row sort of its ``axis=0``
    form. Each row is compared with its representative afterwards, and a hash collision falls
    back to the exact form.

    Shapes:
        rows: ``(num_rows, width)`` int64 -> ``(num_unique, width)`` and ``(num_rows,)`` int64.
    """
    if rows.shape[0] == 0:
        return rows, np.zeros(0, dtype=np.int64)
    if rows.shape[1] > _HASH_MULTIPLIERS.shape[0]:
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1)
    with np.errstate(over="ignore"):
        keys = (rows * _HASH_MULTIPLIERS[: rows.shape[1]]).sum(axis=1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    unique = rows[first]
    if not np.array_equal(unique[inverse], rows):
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


class DecayModel:
    """Sample decay-tree templates from a DEC table and a remainder model, or from real trees.

    Build it with :meth:`from_dec_file` or :meth:`from_truth_trees`.
    """

    def __init__(self, *, root: int, properties: dict[int, ParticleProperties]) -> None:
        self.root = root
        self.catalogue = TemplateCatalogue()
        self._properties = properties
        self._species: dict[int, _Species] = {}
        self._lists: list[tuple[tuple[int, ...], str]] = []
        self._list_index: dict[tuple[tuple[int, ...], str], int] = {}
        self._list_pdg = np.zeros((0, 1), dtype=np.int64)
        self._list_len = np.zeros(0, dtype=np.int64)
        self._remainder: RemainderModel | None = None
        self._truth_templates: np.ndarray | None = None
        self._mode_tables: dict[int, DecayTable] = {}
        self.undecayed: set[int] = set()
        """Unstable species that the templates leave undecayed (no decay block in the file or the default table)."""

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_dec_file(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        remainder: RemainderModel | None = None,
        photos: PhotosConfig | None = None,
        particle_table: str | os.PathLike[str] | None = None,
        on_unknown: str = "raise",
    ) -> DecayModel:
        """Build the model from an EvtGen DEC file.

        Args:
            path: DEC file; None (default) uses the LHCb J/psi table shipped with ``decaylanguage``.
            remainder: model of the string-hadronisation remainder; None (default) loads the tuned
                ``configs/generator/remainder.yaml``.
            photos: PHOTOS photon probabilities; None (default) loads ``configs/generator/photos.yaml``.
            particle_table: BESIII ``pdt.table``; None (default) reads one lying beside ``path``.
            on_unknown: ``"raise"`` (default) or ``"drop"`` for decay lines with unknown particles.

        Raises:
            ConfigError: for an unparsable table, an unknown particle or a forbidden mode.
        """
        from pmse_graph.simulation.remainder import RemainderModel, load_photos_config, load_remainder_config

        # the remainder's species need their blocks even where the mother's modes do not reach them
        config = load_remainder_config() if remainder is None else remainder.config
        species = tuple(code for pdg in config.species for code in (pdg, -pdg))
        table = load_dec_file(path, particle_table=particle_table, on_unknown=on_unknown, extra=species)  # type: ignore[arg-type]
        if remainder is None:
            remainder = RemainderModel(config, masses={pdg: props.mass for pdg, props in table.particles.items()})
        if photos is None:
            photos = load_photos_config()
        model = cls(root=table.mother, properties=dict(table.particles))
        model._table = table
        model._remainder = remainder
        for pdg in table.modes:
            model._add_species(pdg, table, photos)
            model._mode_tables[pdg] = table
        undecayed = set(table.undecayed)
        if table.remainder:
            undecayed.update(int(c) for c in remainder.codes if abs(int(c)) not in STABLE_PDG and int(c) not in table.modes)
        if path is not None and undecayed:
            undecayed = model._adopt_default_blocks(undecayed, photos, extra=species)
        if undecayed:
            names = ", ".join(model._lookup(code).name for code in sorted(undecayed))
            logger.warning("%s: no Decay block for %s in this file or the default table; they stay undecayed", table.path, names)
        model.undecayed = undecayed
        return model

    def _adopt_default_blocks(self, missing: set[int], photos: PhotosConfig, *, extra: tuple[int, ...]) -> set[int]:
        """Decay ``missing`` species, which the user's DEC file has no block for, with the default table's blocks.

        EvtGen reads a user DEC file on top of its generic table, so a particle without a
        block of its own keeps its generic decays. The default table plays that part here.
        Daughters of adopted blocks follow the same rule. Returns the species that neither
        table decays.
        """
        default = load_dec_file(None, extra=tuple(sorted(set(missing) | set(extra))))
        adopted: list[int] = []
        remaining: set[int] = set()
        pending, seen = sorted(missing), set()
        while pending:
            pdg = pending.pop()
            if pdg in seen or pdg in self._species or abs(pdg) in STABLE_PDG:
                continue
            seen.add(pdg)
            modes = default.modes.get(pdg)
            if modes is None:
                remaining.add(pdg)
                continue
            adopted.append(pdg)
            self._properties.setdefault(pdg, default.properties(pdg))
            for mode in modes:
                for daughter in mode.daughters:
                    self._properties.setdefault(daughter, default.properties(daughter))
                    pending.append(daughter)
        for pdg in adopted:
            self._add_species(pdg, default, photos)
            self._mode_tables[pdg] = default
        if adopted:
            logger.warning(
                "%s has no Decay block for %s; they decay as in the default table %s",
                self._table.path, ", ".join(self._lookup(code).name for code in sorted(adopted)), default.path,
            )
        return remaining

    @classmethod
    def from_truth_trees(
        cls,
        files: str | os.PathLike[str] | list[str | os.PathLike[str]],
        *,
        tree: str = "evt",
        pid: str = "Pid",
        mother: str = "Midx",
        particle_table: str | os.PathLike[str] | None = None,
    ) -> DecayModel:
        """Build the model from MC-truth decay trees, one template per distinct stored tree.

        Sampling draws stored events uniformly, so the class mix is that of the files. See
        :mod:`pmse_graph.simulation.truth_trees` for the reading and cleaning rules.
        """
        from pmse_graph.simulation.truth_trees import read_truth_templates

        templates, event_template, properties = read_truth_templates(
            files, tree=tree, pid=pid, mother=mother, particle_table=particle_table
        )
        model = cls(root=int(templates[0].pdg[0]) if templates else 443, properties=properties)
        for index, template in enumerate(templates):
            model.catalogue.add(("truth", index), template)
        model._truth_templates = event_template
        return model

    def _add_species(self, pdg: int, table: DecayTable, photos: PhotosConfig) -> None:
        probabilities: list[float] = []
        list_ids: list[int] = []
        for mode in table.modes[pdg]:
            probability = photos.probability(mode.daughters, table) if mode.photos else 0.0
            if probability < 1.0:
                probabilities.append(mode.branching_fraction * (1.0 - probability))
                list_ids.append(self._register_list(mode.daughters, mode.model))
            if probability > 0.0:
                probabilities.append(mode.branching_fraction * probability)
                list_ids.append(self._register_list((*mode.daughters, PHOTOS_PDG), mode.model))
        remainder = table.remainder.get(pdg, 0.0)
        if remainder > 0 and self._remainder is not None:
            probabilities.append(remainder)
            list_ids.append(-1)
        weights = np.asarray(probabilities, dtype=np.float64)
        cumulative = np.cumsum(weights / weights.sum())
        cumulative[-1] = 1.0
        explicit = frozenset(tuple(sorted(mode.daughters)) for mode in table.modes[pdg]) | frozenset(table.vetoed.get(pdg, ()))
        self._species[pdg] = _Species(cumulative=cumulative, list_ids=np.asarray(list_ids, dtype=np.int64), explicit_sets=explicit)

    def _register_list(self, daughters: tuple[int, ...], model: str) -> int:
        key = (tuple(int(d) for d in daughters), model)
        index = self._list_index.get(key)
        if index is None:
            index = len(self._lists)
            self._list_index[key] = index
            self._lists.append(key)
        return index

    def _list_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # rebuild the padded daughter-list table only after new lists were registered
        if self._list_len.shape[0] != len(self._lists):
            width = max(len(daughters) for daughters, _ in self._lists)
            table = np.zeros((len(self._lists), width), dtype=np.int64)
            lengths = np.zeros(len(self._lists), dtype=np.int64)
            for index, (daughters, _) in enumerate(self._lists):
                table[index, : len(daughters)] = daughters
                lengths[index] = len(daughters)
            self._list_pdg, self._list_len = table, lengths
        return self._list_pdg, self._list_len

    # public API -----------------------------------------------------------------------------

    def particle_properties(self, pdg: int) -> tuple[float, float, float]:
        """Return ``(mass, width, max_dm)`` in GeV for ``pdg`` (-22, a PHOTOS photon, is massless)."""
        properties = self._lookup(pdg)
        return properties.mass, properties.width, properties.max_dm

    def describe_vertex(self, template_index: int, particle: int) -> str:
        """Return where the decay of one particle of a template comes from, for error messages.

        Args:
            template_index: index into :attr:`catalogue`.
            particle: index of the decaying particle within the template.

        Returns:
            ``"FILE:LINE: mother -> daughters"`` for a DEC mode, else the decay and its source
            (the remainder model or the truth files).
        """
        template = self.catalogue[template_index]
        pdg = int(template.pdg[particle])
        daughters = tuple(int(code) for code in template.pdg[template.mother == particle] if code != PHOTOS_PDG)
        decay = f"{self._lookup(pdg).name} -> {' '.join(self._lookup(code).name for code in daughters)}"
        if self._truth_templates is not None:
            return f"{decay} in decay tree {template_index} of the truth files"
        if template.model[particle] == REMAINDER_MODEL_NAME:
            return f"{decay}, drawn by the string-hadronisation remainder model (configs/generator/remainder.yaml)"
        table = self._mode_tables.get(pdg)
        for mode in table.modes.get(pdg, ()) if table is not None else ():
            if mode.daughters == daughters:
                return f"{table.path}:{mode.line}: {decay}"
        return decay

    def vertex_models(self, template_index: int) -> tuple[str, ...]:
        """Return the DEC model of each particle's decay in one template (``""`` for leaves)."""
        return self.catalogue[template_index].model

    @property
    def remainder_fraction(self) -> float:
        """Fraction of root decays left to the remainder model (0 for truth-tree models)."""
        table = getattr(self, "_table", None)
        return 0.0 if table is None else float(table.remainder.get(self.root, 0.0))

    def sample(self, num_events: int, rng: np.random.Generator) -> tuple[np.ndarray, TemplateCatalogue]:
        """Draw a template index for each of ``num_events`` events.

        Returns:
            The template index per event, shape ``(num_events,)`` int64, and the catalogue that
            the indices point into (it grows as new trees appear).
        """
        if num_events < 0:
            raise ValueError(f"Expected num_events >= 0 (got {num_events})")
        if self._truth_templates is not None:
            picks = rng.integers(0, self._truth_templates.shape[0], size=num_events)
            return self._truth_templates[picks].astype(np.int64), self.catalogue
        return self._sample_species(self.root, num_events, rng), self.catalogue

    # sampling -------------------------------------------------------------------------------

    def _sample_species(self, pdg: int, count: int, rng: np.random.Generator) -> np.ndarray:
        species = self._species.get(pdg)
        if species is None or abs(pdg) in STABLE_PDG:
            return np.zeros(count, dtype=np.int64)

        # 1. a daughter list per particle: a DEC option, or a hadron set from the remainder model
        option = np.searchsorted(species.cumulative, rng.random(count), side="right")
        option = np.minimum(option, species.list_ids.shape[0] - 1)
        list_ids = species.list_ids[option]
        from_remainder = list_ids < 0
        if from_remainder.any():
            list_ids[from_remainder] = self._sample_remainder_lists(pdg, int(from_remainder.sum()), rng, species)

        # 2. every daughter species of the whole batch in one call per species
        list_pdg, list_len = self._list_arrays()
        lengths = list_len[list_ids]
        width = int(lengths.max()) if count else 0
        daughters = list_pdg[list_ids, :width]
        filled = np.arange(width)[None, :] < lengths[:, None]
        child_ids = np.full((count, width), -1, dtype=np.int64)
        flat_species = daughters[filled]
        flat_ids = np.zeros(flat_species.shape[0], dtype=np.int64)
        for child in np.unique(flat_species):
            selected = flat_species == child
            flat_ids[selected] = self._sample_species(int(child), int(selected.sum()), rng)
        child_ids[filled] = flat_ids

        # 3. deduplicate (list, child subtrees) rows and register the new ones
        rows = np.concatenate([list_ids[:, None], child_ids], axis=1)
        unique_rows, inverse = unique_rows_fast(rows)
        subtree_ids = np.empty(unique_rows.shape[0], dtype=np.int64)
        for index, row in enumerate(unique_rows.tolist()):
            subtree_ids[index] = self._subtree_id(pdg, species, row)
        return subtree_ids[inverse.reshape(-1)]

    def _sample_remainder_lists(self, pdg: int, count: int, rng: np.random.Generator, species: _Species) -> np.ndarray:
        assert self._remainder is not None
        hadrons = self._remainder.sample(count, rng, budget=self._lookup(pdg).mass, exclude=species.explicit_sets)
        unique_sets, inverse = unique_rows_fast(hadrons)
        photos = self._remainder.photos_probability
        ids = np.empty(unique_sets.shape[0], dtype=np.int64)
        for index, row in enumerate(unique_sets.tolist()):
            ids[index] = self._register_list(tuple(code for code in row if code != 0), REMAINDER_MODEL_NAME)
        list_ids = ids[inverse.reshape(-1)]
        if photos > 0:
            # a PHOTOS photon on the remainder vertex, registered as a separate daughter list
            with_photon = rng.random(count) < photos
            for index in np.unique(list_ids[with_photon]).tolist():
                daughters, model = self._lists[index]
                photon_list = self._register_list((*daughters, PHOTOS_PDG), model)
                list_ids[with_photon & (list_ids == index)] = photon_list
        return list_ids

    def _subtree_id(self, pdg: int, species: _Species, row: list[int]) -> int:
        # drop the -1 padding so that equal trees from batches of different widths share a key
        key = tuple(code for code in row if code >= 0)
        if pdg == self.root:
            found = self.catalogue.lookup(key)
        else:
            found = species.subtrees.get(key)
        if found is not None:
            return found
        daughters, model = self._lists[row[0]]
        subtree = self._compose(pdg, daughters, model, row[1 : 1 + len(daughters)])
        if pdg == self.root:
            return self.catalogue.add(key, self._to_template(subtree))
        species.subtrees[key] = len(species.trees)
        species.trees.append(subtree)
        return species.subtrees[key]

    def _child_tree(self, pdg: int, subtree_id: int) -> _Subtree:
        species = self._species.get(pdg)
        if species is None or abs(pdg) in STABLE_PDG:
            return _Subtree([pdg], [-1], [LEAF_MODEL_NAME])
        return species.trees[subtree_id]

    def _compose(self, pdg: int, daughters: tuple[int, ...], model: str, child_ids: list[int]) -> _Subtree:
        # root, then the direct daughters, then each daughter's own descendants
        children = [self._child_tree(d, c) for d, c in zip(daughters, child_ids)]
        pdg_out = [pdg, *daughters]
        mother_out = [-1, *([0] * len(daughters))]
        model_out = [model, *(child.model[0] for child in children)]
        for position, child in enumerate(children, start=1):
            offset = len(pdg_out) - 1  # child index j > 0 lands at offset + j
            for j in range(1, len(child.pdg)):
                pdg_out.append(child.pdg[j])
                parent = child.mother[j]
                mother_out.append(position if parent == 0 else offset + parent)
                model_out.append(child.model[j])
        return _Subtree(pdg_out, mother_out, model_out)

    def _to_template(self, subtree: _Subtree) -> Template:
        properties = [self._lookup(code) for code in subtree.pdg]
        return Template(
            pdg=np.asarray(subtree.pdg, dtype=np.int32),
            mother=np.asarray(subtree.mother, dtype=np.int32),
            model=tuple(subtree.model),
            mass=np.asarray([p.mass for p in properties]),
            width=np.asarray([p.width for p in properties]),
            max_dm=np.asarray([p.max_dm for p in properties]),
        )

    def _lookup(self, pdg: int) -> ParticleProperties:
        properties = self._properties.get(pdg)
        if properties is None:
            from pmse_graph.simulation.decfile import properties_from_particle

            properties = properties_from_particle(pdg, name=str(pdg))
            self._properties[pdg] = properties
        return properties
