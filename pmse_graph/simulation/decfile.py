"""EvtGen DEC decay tables read into PDG-coded decay modes for the generator.

:func:`load_dec_file` parses a DEC file with ``decaylanguage``'s ``DecFileParser``, starting
from one mother (the J/psi) and following every unstable daughter's ``Decay`` block
recursively. Branching fractions of each block are renormalised to one. Lines that hand the
decay to string hadronisation (``LUNDCHARM``, ``PYTHIA`` lines with partons such as
``g g g`` or ``rndmflav anti-rndmflav``) are not modes: their summed fraction becomes the
block's *remainder*, which :mod:`pmse_graph.simulation.remainder` models.

Particle names resolve through, in order, the DEC file's ``Alias`` statements, an optional
BESIII ``pdt.table`` and the ``particle`` package (EvtGen names, then PDG names). Masses, widths and Breit-Wigner cut-offs
come from the ``pdt.table`` when it names the particle, else from ``particle``.

BESIII's table needs two adjustments before ``decaylanguage`` 1.1 accepts it. Both are made on
a copy of the text that keeps the line numbers. Its BESIII-only models are registered, and its
``ModelAlias`` statements are blanked because the grammar rejects their multi-line parameter
lists, so the alias names are registered as models instead.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pmse_graph.errors import ConfigError

logger = logging.getLogger(__name__)

BESIII_MODELS = ("J2BB1", "J2BB2", "J2BB3", "JPE", "JPIPI", "LUNDA", "LUNDCHARM")
"""Decay models of BesEvtGen that ``decaylanguage`` does not know."""

REMAINDER_MODELS = frozenset({"LUNDCHARM", "PYTHIA", "JETSET", "LUNDAR"})
"""Models that hand a decay to string hadronisation when their daughters are partons or absent."""

PARTON_NAMES = frozenset({"g", "rndmflav", "anti-rndmflav", "d", "anti-d", "u", "anti-u", "s", "anti-s", "c", "anti-c", "string", "cluster"})

STABLE_PDG = frozenset({11, 12, 13, 14, 16, 22, 130, 211, 321, 2112, 2212})
"""Absolute PDG codes of the particles that reach the detector undecayed (e, mu, neutrinos,
gamma, KL, pi+-, K+-, n, p)."""

PHOTOS_PDG = -22
"""PDG code that BESIII truth gives a photon added by PHOTOS final-state radiation."""

DEFAULT_CUTOFF_WIDTHS = 5.0
"""Breit-Wigner cut-off, in widths around the nominal mass, for particles without a
``pdt.table`` entry (``particle`` carries no cut-off)."""

DEFAULT_MOTHER = "J/psi"

UnknownPolicy = Literal["raise", "drop"]


@dataclass(frozen=True)
class ParticleProperties:
    """Nominal properties of one particle species.

    Attributes:
        pdg: PDG code.
        name: EvtGen name.
        mass: nominal mass in GeV.
        width: total width in GeV (0 for stable particles).
        max_dm: Breit-Wigner cut-off in GeV: masses stay within ``mass +- max_dm``.
        three_charge: three times the electric charge.
    """

    pdg: int
    name: str
    mass: float
    width: float
    max_dm: float
    three_charge: int


@dataclass(frozen=True)
class DecayMode:
    """One decay line of a DEC block.

    Attributes:
        branching_fraction: fraction after renormalising the block (remainder included) to one.
        daughters: PDG codes in the order of the DEC line.
        model: DEC model name (``PHSP``, ``VSS``, ``VLL``, ...) without the ``PHOTOS`` flag.
        photos: True when PHOTOS radiation is switched on for this line (flag or ``yesPhotos``).
        line: 1-based line number in the DEC file.
    """

    branching_fraction: float
    daughters: tuple[int, ...]
    model: str
    photos: bool
    line: int


@dataclass
class DecayTable:
    """The decay modes reachable from one mother, keyed by PDG code.

    Attributes:
        path: the DEC file read.
        mother: PDG code of the decaying particle the table starts from (443 for the J/psi).
        modes: explicit modes per unstable particle, fractions renormalised.
        remainder: fraction left to string hadronisation per particle (absent when zero).
        particles: properties of every particle met in the reachable blocks.
        undecayed: unstable particles without a ``Decay`` block, kept as leaves.
        dropped_lines: line numbers of decay lines dropped for an unknown particle.
        particle_table: entries of the ``pdt.table`` read with the DEC file, keyed by PDG code.
        vetoed: sorted daughter codes of zero-fraction lines per particle.
    """

    path: str
    mother: int
    modes: dict[int, tuple[DecayMode, ...]]
    remainder: dict[int, float]
    particles: dict[int, ParticleProperties]
    undecayed: set[int] = field(default_factory=set)
    dropped_lines: list[int] = field(default_factory=list)
    particle_table: dict[int, ParticleProperties] = field(default_factory=dict)
    vetoed: dict[int, set[tuple[int, ...]]] = field(default_factory=dict)

    def properties(self, pdg: int) -> ParticleProperties:
        """Return the properties of ``pdg``: the table's, else the ``pdt.table``'s, else ``particle``'s.

        Raises:
            LookupError: when none of the three sources has a mass for ``pdg``.
        """
        if pdg not in self.particles:
            known = self.particle_table.get(pdg)
            self.particles[pdg] = known if known is not None else properties_from_particle(pdg, name=str(pdg))
        return self.particles[pdg]


def default_dec_path() -> Path:
    """Return the path of the LHCb DEC table shipped with ``decaylanguage``.

    LHCb's table is the default because, unlike Belle II's, it carries the light-meson blocks
    (eta, omega, phi, rho) that J/psi daughters need.
    """
    return Path(str(resources.files("decaylanguage") / "data" / "DECAY_LHCB.DEC"))


def read_particle_table(path: str | os.PathLike[str]) -> dict[str, ParticleProperties]:
    """Read an EvtGen ``pdt.table`` (``add p TYPE NAME ID MASS WIDTH MAX_DM 3*CHARGE ...`` lines).

    Raises:
        ConfigError: when the file is missing or a line has unparsable numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Particle table not found: {path}")
    table: dict[str, ParticleProperties] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.split()
        if len(fields) < 9 or fields[0] != "add":
            continue
        try:
            properties = ParticleProperties(
                pdg=int(fields[4]),
                name=fields[3],
                mass=float(fields[5]),
                width=float(fields[6]),
                max_dm=float(fields[7]),
                three_charge=int(float(fields[8])),
            )
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: invalid particle line ({exc}); expected 'add p TYPE NAME ID MASS WIDTH MAX_DM 3*CHARGE ...'") from exc
        table[properties.name] = properties
    return table


def load_dec_file(
    path: str | os.PathLike[str] | None = None,
    *,
    particle_table: str | os.PathLike[str] | None = None,
    mother: str = DEFAULT_MOTHER,
    on_unknown: UnknownPolicy = "raise",
    extra: tuple[int, ...] = (),
) -> DecayTable:
    """Parse a DEC file and collect the decay modes reachable from ``mother``.

    Args:
        path: DEC file; None (default) reads the LHCb table shipped with ``decaylanguage``.
        particle_table: optional BESIII ``pdt.table`` for names and masses; when None (default)
            and a ``pdt.table`` lies beside ``path``, that one is read.
        mother: EvtGen name of the particle to start from (default ``"J/psi"``).
        on_unknown: ``"raise"`` (default) rejects a reachable decay line with an unknown particle;
            ``"drop"`` removes such lines before renormalising, logs each one and counts them in
            :attr:`DecayTable.dropped_lines`.
        extra: PDG codes whose blocks are read too when the file has them (the species of the
            remainder model, which the mother's own modes may not reach); default none.

    Raises:
        ConfigError: naming the file and line for a missing block, an unknown particle or a mode
            whose daughters weigh more than the mother.
    """
    dec_path = Path(path) if path is not None else default_dec_path()
    if particle_table is None and path is not None and (dec_path.parent / "pdt.table").is_file():
        particle_table = dec_path.parent / "pdt.table"
    if on_unknown not in ("raise", "drop"):
        raise ConfigError(f"Expected on_unknown to be 'raise' or 'drop' (got {on_unknown!r})")
    table_path = str(Path(particle_table).resolve()) if particle_table is not None else ""
    return _load_cached(str(dec_path.resolve()), table_path, mother, on_unknown, tuple(sorted(set(extra))))


@lru_cache(maxsize=8)
def _load_cached(dec_path: str, table_path: str, mother: str, on_unknown: UnknownPolicy, extra: tuple[int, ...]) -> DecayTable:
    # Parsing a 12,000-line table takes about 1.5 s, so repeated models share one result.
    # Callers must not mutate the returned table's modes.
    names = read_particle_table(table_path) if table_path else {}
    return _DecReader(Path(dec_path), names, on_unknown).read(mother, extra=extra)


class _DecReader:
    """Resolve the blocks reachable from a mother, with line numbers for error messages."""

    def __init__(self, path: Path, names: dict[str, ParticleProperties], on_unknown: UnknownPolicy) -> None:
        self.path = path
        self.on_unknown = on_unknown
        self.names = names
        if not path.is_file():
            raise ConfigError(f"DEC file not found: {path}")
        text = path.read_text(errors="replace")
        self.text, self.block_lines, self.remainder_lines, alias_models = _prepare_text(text)
        self.parser = _parse(self.text, alias_models, path)
        self.aliases = self.parser.dict_aliases()
        self.global_photos = bool(self.parser.global_photos_flag())

    def read(self, mother: str, *, extra: tuple[int, ...] = ()) -> DecayTable:
        mother_pdg = self._resolve(mother, line=0, context="the requested mother")
        table = DecayTable(
            path=str(self.path), mother=mother_pdg, modes={}, remainder={}, particles={},
            particle_table={properties.pdg: properties for properties in self.names.values()},
        )
        if mother not in self.block_lines and mother not in self.remainder_lines:
            raise ConfigError(
                f"{self.path}: the DEC file has no {mother} block ('Decay {mother}' ... 'Enddecay'), so there is nothing "
                f"to generate; add one or pass a DEC file that decays the {mother}"
            )
        pending = [(name, self._block_line(name)) for name in self._names_of(extra)]
        pending.append((mother, self._block_line(mother)))
        seen: set[str] = set()
        while pending:
            name, line = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            pdg = self._resolve(name, line=line, context="a decay line")
            table.particles[pdg] = self._properties(name, pdg, line=line)
            if abs(pdg) in STABLE_PDG:
                continue
            modes, remainder, daughter_names = self._read_block(name, pdg, table)
            if modes is None:
                table.undecayed.add(pdg)
                continue
            table.modes[pdg] = modes
            if remainder > 0:
                table.remainder[pdg] = remainder
            pending.extend(daughter_names)
        if table.undecayed:
            # DecayModel decays these with the default table's blocks where it has them
            logger.info(
                "%s: no Decay block for %d unstable particle(s) (%s)",
                self.path, len(table.undecayed), ", ".join(table.particles[p].name for p in sorted(table.undecayed)),
            )
        return table

    def _read_block(self, name: str, pdg: int, table: DecayTable) -> tuple[tuple[DecayMode, ...] | None, float, list[tuple[str, int]]]:
        from decaylanguage.dec.dec import DecayNotFound

        try:
            decay_lines = self.parser._find_decay_modes(name)
        except DecayNotFound:
            decay_lines = ()
        line_numbers = self.block_lines.get(name, [])
        remainder = sum(fraction for fraction, _ in self.remainder_lines.get(name, []))
        if not decay_lines and remainder == 0:
            return None, 0.0, []

        raw: list[tuple[float, tuple[int, ...], str, bool, int]] = []
        daughter_names: list[tuple[str, int]] = []
        mother_props = table.particles[pdg]
        for index, decay_line in enumerate(decay_lines):
            details = self.parser._decay_mode_details(decay_line, display_photos_keyword=False)
            line = line_numbers[index] if index < len(line_numbers) else 0
            fraction = float(details["bf"])
            if fraction <= 0:
                self._record_veto(table, pdg, details["fs"], line)
                continue
            if any(daughter in PARTON_NAMES for daughter in details["fs"]) or not details["fs"]:
                remainder += fraction
                continue
            try:
                daughters = [self._resolve(daughter, line=line, context=f"the decay of {name}") for daughter in details["fs"]]
                found = [self._properties(daughter, code, line=line) for daughter, code in zip(details["fs"], daughters)]
            except ConfigError as exc:
                if self.on_unknown == "raise":
                    raise
                # the message up to its first "; " names the line and the particle, without the advice to drop it
                logger.warning("dropped decay line: %s", str(exc).split("; ", 1)[0])
                table.dropped_lines.append(line)
                continue
            for daughter, properties in zip(details["fs"], found):
                table.particles[properties.pdg] = properties
                daughter_names.append((daughter, line))
            self._check_mass(name, mother_props, [table.particles[d] for d in daughters], line)
            photos = self.global_photos or bool(list(decay_line.find_data("photos")))
            raw.append((fraction, tuple(daughters), str(details["model"]), photos, line))

        total = sum(item[0] for item in raw) + remainder
        if total <= 0:
            return None, 0.0, []
        modes = tuple(DecayMode(fraction / total, daughters, model, photos, line) for fraction, daughters, model, photos, line in raw)
        return modes, remainder / total, daughter_names

    def _record_veto(self, table: DecayTable, pdg: int, names: list[str], line: int) -> None:
        # zero-fraction lines list sets the remainder must not produce (BESIII: "kill some
        # prohibitive decays generated by lundcharm")
        try:
            codes = tuple(sorted(self._resolve(name, line=line, context="a zero-fraction line") for name in names))
        except ConfigError:
            return
        if codes:
            table.vetoed.setdefault(pdg, set()).add(codes)

    def _check_mass(self, name: str, mother: ParticleProperties, daughters: list[ParticleProperties], line: int) -> None:
        lightest = sum(max(d.mass - d.max_dm, 0.0) for d in daughters)
        heaviest_mother = mother.mass + mother.max_dm
        if lightest > heaviest_mother:
            listed = " ".join(d.name for d in daughters)
            raise ConfigError(
                f"{self.path}:{line}: kinematically forbidden mode {name} -> {listed}: the daughters weigh at least "
                f"{lightest:.4f} GeV but {name} reaches at most {heaviest_mother:.4f} GeV; remove the line or fix the masses"
            )

    def _names_of(self, codes: tuple[int, ...]) -> list[str]:
        """Return the names under which the file has blocks for ``codes``; codes without a block are skipped."""
        from particle import Particle

        by_code = {properties.pdg: name for name, properties in self.names.items()}
        mothers = set(self.parser.list_decay_mother_names())
        found = []
        for code in codes:
            candidates = [by_code.get(code)]
            try:
                candidates.append(Particle.from_pdgid(code).evtgen_name)
            except Exception:  # particle raises several lookup errors for codes it does not know
                pass
            found.extend(name for name in dict.fromkeys(candidates) if name in mothers)
        return found

    def _block_line(self, name: str) -> int:
        lines = self.block_lines.get(name)
        return lines[0] if lines else 0

    def _resolve(self, name: str, *, line: int, context: str) -> int:
        target = self.aliases.get(name, name)
        if target in self.names:
            return self.names[target].pdg
        from particle import Particle
        from particle.particle import ParticleNotFound
        from particle.particle.particle import InvalidParticle

        # EvtGen writes "anti-X" where PDG names use "X~": try the particle's name and flip the sign
        candidates = [(target, 1)]
        if target.startswith("anti-"):
            candidates.append((target[len("anti-"):], -1))
        for candidate, sign in candidates:
            for lookup in (Particle.from_evtgen_name, Particle.from_name):
                try:
                    return sign * int(lookup(candidate).pdgid)
                except (ParticleNotFound, InvalidParticle, ValueError):
                    continue
        else:
            location = f"{self.path}:{line}" if line else str(self.path)
            raise ConfigError(
                f"{location}: unknown particle '{name}' in {context}; it is neither an Alias, a pdt.table entry nor an "
                f"EvtGen name known to the 'particle' package. Fix the name, pass a particle table (pdt.table) that defines it, "
                f"or drop the decay lines that name it with --unknown-particles drop (on_unknown='drop')"
            ) from None

    def _properties(self, name: str, pdg: int, *, line: int) -> ParticleProperties:
        target = self.aliases.get(name, name)
        if target in self.names:
            return self.names[target]
        try:
            return properties_from_particle(pdg, name=target)
        except LookupError as exc:
            raise ConfigError(
                f"{self.path}:{line}: no mass known for '{name}' ({exc}); drop the decay lines that name it with "
                f"--unknown-particles drop (on_unknown='drop'), or pass a particle table (pdt.table) that gives its mass"
            ) from None


def properties_from_particle(pdg: int, *, name: str) -> ParticleProperties:
    """Return the PDG properties of ``pdg`` from ``particle``, with the default Breit-Wigner cut-off.

    Raises:
        LookupError: when ``particle`` has no entry or no mass for the code.
    """
    if pdg == PHOTOS_PDG:
        return ParticleProperties(pdg=pdg, name="gammaFSR", mass=0.0, width=0.0, max_dm=0.0, three_charge=0)
    from particle import Particle

    from particle.particle import ParticleNotFound
    from particle.particle.particle import InvalidParticle

    try:
        particle = Particle.from_pdgid(pdg)
    except (ParticleNotFound, InvalidParticle) as exc:
        raise LookupError(f"PDG code {pdg} is unknown to the 'particle' package") from exc
    if particle.mass is None and abs(pdg) in (12, 14, 16):
        particle_mass = 0.0
    elif particle.mass is None:
        raise LookupError(f"the 'particle' package has no mass for PDG code {pdg}")
    else:
        particle_mass = particle.mass
    mass = particle_mass / 1000.0
    width = 0.0 if abs(pdg) in STABLE_PDG else (particle.width or 0.0) / 1000.0
    return ParticleProperties(
        pdg=pdg, name=name, mass=mass, width=width, max_dm=DEFAULT_CUTOFF_WIDTHS * width, three_charge=int(particle.three_charge or 0)
    )


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _prepare_text(text: str) -> tuple[str, dict[str, list[int]], dict[str, list[tuple[float, int]]], list[str]]:
    """Blank what ``decaylanguage`` rejects and index the decay lines, keeping line numbers.

    Returns the edited text, the line numbers of each block's decay lines (first line: the
    ``Decay`` statement), the daughter-less remainder lines per block and the ``ModelAlias`` names.
    """
    lines = text.splitlines()
    block_lines: dict[str, list[int]] = {}
    remainder_lines: dict[str, list[tuple[float, int]]] = {}
    alias_models: list[str] = []
    cdecay_lines: dict[str, int] = {}
    current: str | None = None
    in_model_alias = False
    for index, raw in enumerate(lines):
        code = raw.split("#", 1)[0].strip()
        words = code.split()
        if in_model_alias:
            lines[index] = ""
            in_model_alias = ";" not in code
            continue
        if not words:
            continue
        if words[0] == "ModelAlias":
            alias_models.append(words[1])
            lines[index] = ""
            in_model_alias = ";" not in code
        elif words[0] == "Decay" and len(words) > 1:
            current = words[1]
            if current not in block_lines:
                block_lines[current] = [index + 1]
            else:
                current = None  # decaylanguage keeps the first block of a name
        elif words[0] == "CDecay" and len(words) > 1:
            cdecay_lines[words[1]] = index + 1
        elif words[0] == "Enddecay":
            current = None
        elif current is not None and _NUMBER.match(words[0]):
            body = code.rstrip(";").split()
            if len(body) <= 2:
                # a daughter-less line such as "0.46 LUNDCHARM;": the string-hadronisation remainder
                remainder_lines.setdefault(current, []).append((float(words[0]), index + 1))
                lines[index] = ""
            else:
                block_lines[current].append(index + 1)
    for name, numbers in block_lines.items():
        block_lines[name] = numbers[1:]
    for name, line in cdecay_lines.items():
        # a charge-conjugated block has no lines of its own: point at the CDecay statement
        block_lines.setdefault(name, [line] * 1000)
    return "\n".join(lines), block_lines, remainder_lines, alias_models


_UNKNOWN_MODEL = re.compile(r"Decay model or ModelAlias (\S+) is not defined")


def _parse(text: str, alias_models: list[str], path: Path):
    """Parse with ``decaylanguage``, registering BESIII's models and any other model it lacks.

    Models are only labels here (the kinematics decide what they honour), so a model name that
    ``decaylanguage`` does not know is registered and logged rather than rejected.
    """
    from decaylanguage import DecFileParser

    extra_models: list[str] = []
    for _attempt in range(200):
        parser = DecFileParser.from_string(text)
        parser.load_additional_decay_models(*BESIII_MODELS, *alias_models, *extra_models)
        try:
            # decaylanguage warns about blocks that a J/psi generator never reads (B_c aliases,
            # redefined decays), so these warnings go to the debug log, not the console
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                parser.parse()
            for warning in caught:
                logger.debug("%s: decaylanguage: %s", path, str(warning.message).replace("\n", " "))
        except Exception as exc:  # lark wraps errors in several unrelated exception classes
            unknown = _UNKNOWN_MODEL.search(str(exc))
            if unknown is None or unknown.group(1) in extra_models:
                raise ConfigError(f"{path}: decaylanguage could not parse the DEC file: {exc}") from exc
            extra_models.append(unknown.group(1))
            continue
        if extra_models:
            logger.info("%s: registered %d decay models unknown to decaylanguage: %s", path, len(extra_models), ", ".join(extra_models))
        return parser
    raise ConfigError(f"{path}: more than 200 decay models unknown to decaylanguage; is this an EvtGen DEC file?")
