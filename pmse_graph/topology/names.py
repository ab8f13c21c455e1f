"""Particle names and charges for TopoAna-style decay-tree strings.

:class:`ParticleNames` maps a PDG code to the name printed in a decay tree and to
its charge in units of e/3, which orders particles of equal ``|PDG code|``. The
default table takes EvtGen's names from the ``particle`` package and corrects
the few that BESIII's TopoAna output spells differently or that ``particle`` does
not know (:data:`TOPOANA_NAME_OVERRIDES`), so that default labels of the real
truth files equal TopoAna's own output ``jpsi_ta.txt`` string for string. :meth:`ParticleNames.from_pid_table`
reads TopoAna's own table (``pidtable_BESIII.dat``: PDG code, three times the
charge, name, TeX name, conjugation flag per line) instead.

Besides PDG codes, TopoAna uses a few pseudo-codes, kept here as constants.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from pmse_graph.errors import DataError

logger = logging.getLogger(__name__)

PHOTON = 22
FSR_PHOTON = -22
"""Photon radiated by PHOTOS in BESIII truth; printed as ``gammaf``."""
GENERAL_FSR_PHOTON = -22222222
"""TopoAna's code for a photon with at least two non-photon sisters, one of them e, mu, pi, K or p (``gammaF``)."""
ISR_PHOTON = 22222222
"""TopoAna's code for a photon produced next to the initial particles (``gammaI``)."""
PI0 = 111
E_MINUS = 11
QUARK_CODES = frozenset(range(1, 7))

# Names (and three times the charge) where TopoAna's output differs from
# Particle.evtgen_name of particle 1.1.0, or where particle has no EvtGen name.
# Codes that only exist as antiparticle pairs list both signs. Nine codes
# (marked "as jpsi_ta.txt") follow TopoAna's reference output, whose particle
# table spells them differently from pidtable_BESIII.dat.
TOPOANA_NAME_OVERRIDES: dict[int, tuple[str, int]] = {
    FSR_PHOTON: ("gammaf", 0),
    GENERAL_FSR_PHOTON: ("gammaF", 0),
    ISR_PHOTON: ("gammaI", 0),
    91: ("cluster", 0),
    92: ("string", 0),
    10022: ("vpho", 0),
    90022: ("gamma*", 0),
    117: ("rho_30", 0),
    229: ("f(4)(2050)", 0),  # as jpsi_ta.txt
    217: ("rho_3+", 3),
    -217: ("rho_3-", -3),
    10111: ("a(0)(1450)0", 0),  # as jpsi_ta.txt
    10211: ("a(0)(1450)+", 3),  # as jpsi_ta.txt
    -10211: ("a(0)(1450)-", -3),  # as jpsi_ta.txt
    10221: ("f_0(1370)", 0),  # as jpsi_ta.txt
    10222: ("sigma_0", 0),
    10331: ("f(0)(1710)", 0),  # as jpsi_ta.txt
    10335: ("eta(2)(1870)", 0),  # as jpsi_ta.txt
    10315: ("K_20", 0),
    -10315: ("anti-K_20", 0),
    10325: ("K_2+", 3),
    -10325: ("K_2-", -3),
    20111: ("pi(2S)0", 0),
    20211: ("pi(2S)+", 3),
    -20211: ("pi(2S)-", -3),
    20221: ("eta(2S)", 0),
    30113: ("rho(2S)0", 0),
    30213: ("rho(2S)+", 3),
    -30213: ("rho(2S)-", -3),
    30221: ("f_0(1370)", 0),
    30223: ("omega(2S)", 0),
    30331: ("f_0(1750)", 0),
    40113: ("rho(3S)0", 0),
    40213: ("rho(3S)+", 3),
    -40213: ("rho(3S)-", -3),
    50221: ("f_0(2020)", 0),  # as jpsi_ta.txt
    8000008: ("f_0(1800)", 0),
    8000018: ("f_2(1810)", 0),
    8000313: ("K*(1410)0", 0),
    -8000313: ("anti-K*(1410)0", 0),
    8000323: ("K*(1410)+", 3),
    -8000323: ("K*(1410)-", -3),
    8000333: ("phi(2170)", 0),
    8888888: ("f_0(1790)", 0),
    9000115: ("a'_20", 0),
    9000215: ("a'_2+", 3),
    -9000215: ("a'_2-", -3),
    9000221: ("f_0(600)", 0),
    9000223: ("f_1(1510)", 0),
    9000311: ("kapa0", 0),
    -9000311: ("anti-kapa0", 0),
    9000321: ("kapa+", 3),
    -9000321: ("kapa-", -3),
    9010221: ("f_0(980)", 0),
    9020225: ("f_2(1640)", 0),
    9030443: ("psi(4260)", 0),
    9040221: ("eta(1760)", 0),
    9040225: ("f_2(1910)", 0),
    9040443: ("psi(4360)", 0),
    9050225: ("f(2)(1950)", 0),  # as jpsi_ta.txt
    9060221: ("f_0(2100)", 0),
    9070221: ("f_0(2200)", 0),
    9070225: ("f_2(2150)", 0),
    9080221: ("eta(2225)", 0),
    9999999: ("x(1835)", 0),
}


def _lookup_particle_package(code: int) -> tuple[str, int] | None:
    """Return EvtGen's name and three times the charge from ``particle``, or None if it has neither."""
    from particle import InvalidParticle, Particle, ParticleNotFound

    try:
        entry = Particle.from_pdgid(code)
    except (ParticleNotFound, InvalidParticle, ValueError):
        return None
    name = entry.evtgen_name or entry.name
    three_charge = entry.three_charge
    if name is None or three_charge is None:
        return None
    return name, int(three_charge)


@dataclass
class ParticleNames:
    """PDG code to printed name and charge, with a cache filled on first use.

    Attributes:
        names: name printed for each known code.
        three_charges: charge of each known code in units of e/3.
        use_particle_package: look codes missing from ``names`` up in ``particle``.
        source: where the table came from, for messages.
    """

    names: dict[int, str] = field(default_factory=dict)
    three_charges: dict[int, int] = field(default_factory=dict)
    use_particle_package: bool = True
    source: str = "particle package with TopoAna overrides"
    _unknown: set[int] = field(default_factory=set, repr=False)

    @classmethod
    def default(cls) -> ParticleNames:
        """Build the default table: ``particle``'s EvtGen names plus :data:`TOPOANA_NAME_OVERRIDES`."""
        table = cls()
        for code, (name, three_charge) in TOPOANA_NAME_OVERRIDES.items():
            table.names[code] = name
            table.three_charges[code] = three_charge
        return table

    @classmethod
    def from_pid_table(cls, path: str | os.PathLike[str]) -> ParticleNames:
        """Read a TopoAna particle table (``pidtable_BESIII.dat`` format).

        Each non-empty line contains the PDG code, three times the charge, the name, the
        TeX name and the conjugation flag, separated by blanks. Lines starting with
        ``#`` or ``%`` are comments.

        Args:
            path: the table file.

        Raises:
            DataError: the file is missing, or a line has fewer than three fields or
                non-integer code or charge.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"Particle table not found: {path}")
        table = cls(use_particle_package=False, source=str(path))
        with path.open() as stream:
            for line_number, line in enumerate(stream, start=1):
                fields = line.split()
                if not fields or fields[0].startswith(("#", "%")):
                    continue
                try:
                    code = int(fields[0])
                    three_charge = int(fields[1])
                    name = fields[2]
                except (IndexError, ValueError) as exc:
                    raise DataError(
                        f"Invalid line {line_number} in particle table {path}: expected 'PDG code, 3*charge, name, ...' "
                        f"(got {line.strip()!r})"
                    ) from exc
                table.names[code] = name
                table.three_charges[code] = three_charge
        # TopoAna adds its pseudo-particles itself when a table lacks them.
        for code in (FSR_PHOTON, GENERAL_FSR_PHOTON, ISR_PHOTON):
            table.names.setdefault(code, TOPOANA_NAME_OVERRIDES[code][0])
            table.three_charges.setdefault(code, 0)
        return table

    def _resolve(self, code: int) -> None:
        found = _lookup_particle_package(code) if self.use_particle_package else None
        if found is None:
            # NOTE: unknown codes print as "pdg<code>" and count as neutral, so they only
            # order correctly against their own antiparticle if both are unknown.
            found = (f"pdg{code}", 0)
            if code not in self._unknown:
                self._unknown.add(code)
                logger.warning("PDG code %d is not in the particle table (%s); it prints as %r", code, self.source, found[0])
        self.names[code], self.three_charges[code] = found

    def name(self, code: int) -> str:
        """Return the printed name of ``code``."""
        if code not in self.names:
            self._resolve(code)
        return self.names[code]

    def three_charge(self, code: int) -> int:
        """Return the charge of ``code`` in units of e/3."""
        if code not in self.three_charges:
            self._resolve(code)
        return self.three_charges[code]

    @property
    def unknown_codes(self) -> frozenset[int]:
        """Codes that were looked up but found in neither the table nor ``particle``."""
        return frozenset(self._unknown)
