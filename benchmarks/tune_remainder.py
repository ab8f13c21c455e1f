"""Fit the hadronisation-remainder model to real BESIII J/psi truth and compare class distributions.

Run from the repository root:

    .venv/bin/python benchmarks/tune_remainder.py                      # tune, write YAML, plot, log
    .venv/bin/python benchmarks/tune_remainder.py --events 20000 --iterations 3 --no-write   # quick check
    .venv/bin/python benchmarks/tune_remainder.py --compare-only       # step 4 only, with the written YAML

Steps:
1. Split the real events (TopoAna's ``jpsi1.root`` + ``jpsi2.root``) into explicit-mode events,
   whose J/psi daughters (PHOTOS photons aside) equal one of the BESIII table's J/psi modes, and
   remainder events, the rest. BesEvtGen vetoes LUNDCHARM sets that repeat an explicit mode, so
   the split is clean up to modes that the table lists with zero fraction.
2. Targets from the remainder events: the distribution of the number of primary hadrons and the
   mean count of each species per event, a particle and its antiparticle pooled. The PHOTOS
   photon rates and the smallest kinetic energy left by the primaries are measured too.
3. Fit the model's pre-acceptance weights by iterated multiplicative updates until the
   *accepted* sets match the targets, and write ``configs/generator/remainder.yaml`` and
   ``photos.yaml``.
4. Generate events with the complete decay model and compare with real truth: distinct trees,
   top-20/99/1000 coverage, distinct final states, charged multiplicity, with as many generated
   events as real ones. Plot rank vs events into ``benchmarks/plots/remainder_classes.png`` and
   write the table into ``benchmarks/RESULTS.md``, replacing the section of an earlier run.

Trees and final states are counted with the topology package's TopoAna labels
(:func:`pmse_graph.topology.tree.label_flat`), which reproduce TopoAna's 17,424 trees of the
real files.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pmse_graph.benchmark.provenance import provenance  # noqa: E402
from pmse_graph.config import atomic_write_text  # noqa: E402
from pmse_graph.simulation.decay_model import DecayModel  # noqa: E402
from pmse_graph.simulation.decfile import PHOTOS_PDG, STABLE_PDG, load_dec_file  # noqa: E402
from pmse_graph.simulation.remainder import (  # noqa: E402
    PhotosConfig,
    RemainderConfig,
    RemainderModel,
    load_photos_config,
    load_remainder_config,
)
from pmse_graph.topology.tree import label_flat  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TRUTH_FILES = [SHARED / "topoana" / "jpsi1.root", SHARED / "topoana" / "jpsi2.root"]
BES_DEC = SHARED / "decay" / "BES_DECAY_v145.DEC"
JPSI = 443
CHARGED_FINAL = {11, 13, 211, 321, 2212}


def antiparticle(pdg: int) -> int:
    from particle import Particle

    return int(Particle.from_pdgid(pdg).invert().pdgid)


def read_truth(files: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return one ``(pdg, mother)`` pair of int arrays per real event."""
    import uproot

    events = []
    for path in files:
        arrays = uproot.open(path)["evt"].arrays(["Pid", "Midx"], library="np")
        events.extend(zip((np.asarray(p) for p in arrays["Pid"]), (np.asarray(m) for m in arrays["Midx"])))
    return events


def charged_multiplicity(pdg: np.ndarray, mother: np.ndarray) -> int:
    has_daughters = np.zeros(len(pdg), dtype=bool)
    has_daughters[mother[mother >= 0]] = True
    return int(np.isin(np.abs(pdg[~has_daughters]), list(CHARGED_FINAL)).sum())


def class_summary(events: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Return distinct trees, coverage of the top classes, final states and multiplicities."""
    lengths = np.array([len(p) for p, _ in events], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = label_flat(np.concatenate([p for p, _ in events]), np.concatenate([m for _, m in events]), offsets)
    trees = collections.Counter(labels.tree.tolist())
    finals = collections.Counter(labels.final_state.tolist())
    counts = np.sort(np.fromiter(trees.values(), dtype=np.int64))[::-1]
    total = counts.sum()
    charged = np.bincount([charged_multiplicity(p, m) for p, m in events], minlength=11)[:11] / total
    return {
        "events": int(total),
        "trees": len(trees),
        "singletons": int((counts == 1).sum()),
        "top20": float(counts[:20].sum() / total),
        "top99": float(counts[:99].sum() / total),
        "top1000": float(counts[:1000].sum() / total),
        "final_states": len(finals),
        "charged": charged,
        "rank_counts": counts,
    }


def split_real(events, explicit_sets):
    """Return the J/psi primaries (photons of PHOTOS removed) of the real remainder events."""
    remainder, photos_remainder = [], 0
    for pdg, mother in events:
        direct = pdg[mother == 0]
        primaries = tuple(sorted(int(c) for c in direct if c != PHOTOS_PDG))
        if primaries in explicit_sets:
            continue
        remainder.append(primaries)
        photos_remainder += int(np.any(direct == PHOTOS_PDG))
    return remainder, photos_remainder / max(len(remainder), 1)


def photos_rates(events, table) -> PhotosConfig:
    """Measure the PHOTOS photon probability for lepton-pair and other charged decays."""
    lepton = [0, 0]
    charged = [0, 0]
    for pdg, mother in events:
        for parent in np.unique(mother[mother >= 0]).tolist():
            codes = pdg[mother == parent]
            real = codes[codes != PHOTOS_PDG]
            has_photon = bool(np.any(codes == PHOTOS_PDG))
            charges = [c for c in real.tolist() if table.properties(int(c)).three_charge != 0]
            if not charges:
                continue
            is_lepton_pair = len(charges) == 2 and all(abs(c) in (11, 13) for c in charges)
            bucket = lepton if is_lepton_pair else charged
            bucket[0] += has_photon
            bucket[1] += 1
    return PhotosConfig(lepton_pair=round(lepton[0] / max(lepton[1], 1), 5), charged=round(charged[0] / max(charged[1], 1), 5))


def fit(targets_n, targets_species, species, *, table, explicit, min_kinetic, photos_probability, iterations, draws, rng):
    """Adjust the pre-acceptance weights until accepted sets match the targets."""
    sizes = sorted(targets_n)
    multiplicity = {n: max(targets_n[n], 1e-4) for n in sizes}
    weights = {s: max(targets_species[s], 1e-5) for s in species}
    budget = table.properties(JPSI).mass
    masses = {pdg: props.mass for pdg, props in table.particles.items()}
    for iteration in range(iterations):
        config = RemainderConfig(multiplicity=multiplicity, species=weights, min_kinetic_energy=min_kinetic, photos_probability=photos_probability)
        sets = RemainderModel(config, masses=masses).sample(draws, rng, budget=budget, exclude=explicit)
        sizes_drawn = (sets != 0).sum(axis=1)
        sim_n = np.bincount(sizes_drawn, minlength=max(sizes) + 1) / draws
        codes = np.abs(sets[sets != 0])
        sim_species = {s: float((codes == s).sum()) / draws for s in species}
        error_n = max(abs(sim_n[n] - targets_n[n]) for n in sizes)
        error_s = max(abs(sim_species[s] - targets_species[s]) for s in species)
        print(f"iteration {iteration}: max |multiplicity error| {error_n:.4f}, max |species error| {error_s:.4f}")
        for n in sizes:
            multiplicity[n] *= ((targets_n[n] + 1e-4) / (sim_n[n] + 1e-4)) ** 0.8
        for s in species:
            weights[s] *= ((targets_species[s] + 1e-5) / (sim_species[s] + 1e-5)) ** 0.8
    total_n = sum(multiplicity.values())
    total_s = sum(weights.values())
    return (
        {int(n): round(float(v / total_n), 6) for n, v in multiplicity.items()},
        {int(s): round(float(v / total_s), 6) for s, v in weights.items()},
    )


def generated_events(model: DecayModel, num: int, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    ids, catalogue = model.sample(num, rng)
    return [(catalogue[i].pdg, catalogue[i].mother) for i in ids.tolist()]


def plot(real, generated, path: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for summary, name in ((real, "real BESIII truth"), (generated, label)):
        counts = summary["rank_counts"]
        left.loglog(np.arange(1, counts.size + 1), counts, label=f"{name}: {summary['trees']} trees")
    left.set_xlabel("decay-tree rank")
    left.set_ylabel("events")
    left.legend()
    left.set_title("Class frequency, 100,000 events each" if real["events"] == 100_000 else "Class frequency")
    positions = np.arange(11)
    right.bar(positions - 0.2, real["charged"], width=0.4, label="real")
    right.bar(positions + 0.2, generated["charged"], width=0.4, label="generated")
    right.set_xlabel("charged final-state particles")
    right.set_ylabel("fraction of events")
    right.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dec-file", default=None, help="DEC table the tuned model runs with (default: decaylanguage's LHCb table)")
    parser.add_argument("--events", type=int, default=100_000, help="real events to read (at most 100,000) and events to generate")
    parser.add_argument("--iterations", type=int, default=12, help="fit iterations")
    parser.add_argument("--draws", type=int, default=200_000, help="remainder sets drawn per fit iteration")
    parser.add_argument("--min-share", type=float, default=2e-4, help="smallest species share among remainder hadrons that is modelled")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out-dir", default=str(REPO / "configs" / "generator"), help="folder of remainder.yaml and photos.yaml")
    parser.add_argument("--no-write", action="store_true", help="fit and compare without writing YAML or RESULTS.md")
    parser.add_argument("--compare-only", action="store_true", help="skip the fit: compare the model of the YAML files in --out-dir")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    if args.compare_only:
        events = read_truth(TRUTH_FILES)[: args.events]
        out = Path(args.out_dir)
        model = DecayModel.from_dec_file(args.dec_file, remainder=_remainder_from(out, args.dec_file), photos=load_photos_config(out / "photos.yaml"))
        compare(model, events, rng, args, started, "benchmarks/tune_remainder.py " + " ".join(sys.argv[1:]), fitted=False)
        return

    # 1. real events and the explicit/remainder split with BESIII's own table
    events = read_truth(TRUTH_FILES)[: args.events]
    bes = load_dec_file(BES_DEC, on_unknown="drop")
    bes_explicit = {tuple(sorted(mode.daughters)) for mode in bes.modes[JPSI]}
    remainder, photos_remainder = split_real(events, bes_explicit)
    print(f"real events: {len(events)}, remainder-like: {len(remainder)} ({len(remainder) / len(events):.3f}); BESIII table remainder fraction {bes.remainder[JPSI]:.3f}")

    # 2. targets: primary multiplicity and species content of the remainder events
    pooled = collections.Counter(abs(code) for primaries in remainder for code in primaries)
    candidates = tuple(code for pdg in pooled for code in (pdg, -pdg))
    table = load_dec_file(args.dec_file, extra=candidates)
    decayable = set(table.modes) | {c for c in candidates if abs(c) in STABLE_PDG}
    total_hadrons = sum(pooled.values())
    species = sorted(
        s for s, n in pooled.items() if n / total_hadrons >= args.min_share and s in decayable and antiparticle(s) in decayable
    )
    targets_species = {s: pooled[s] / len(remainder) for s in species}
    sizes = collections.Counter(len(p) for p in remainder)
    targets_n = {n: sizes[n] / len(remainder) for n in sorted(sizes) if n >= 2}
    print(f"modelled species ({len(species)}): {species}; their share of remainder hadrons {sum(pooled[s] for s in species) / total_hadrons:.3f}")
    slack = [bes.properties(JPSI).mass - sum(bes.properties(c).mass for c in p) for p in remainder]
    min_kinetic = round(max(float(np.percentile(slack, 0.5)), 0.0), 4)
    photos = photos_rates(events, bes)
    print(f"PHOTOS: {photos}; remainder vertex {photos_remainder:.4f}; min kinetic energy {min_kinetic} GeV")

    # 3. fit
    explicit = {tuple(sorted(mode.daughters)) for mode in table.modes[JPSI]}
    multiplicity, weights = fit(
        targets_n, targets_species, species, table=table, explicit=explicit, min_kinetic=min_kinetic,
        photos_probability=photos_remainder, iterations=args.iterations, draws=args.draws, rng=rng,
    )
    config = RemainderConfig(multiplicity=multiplicity, species=weights, min_kinetic_energy=min_kinetic, photos_probability=round(photos_remainder, 5))
    command = "benchmarks/tune_remainder.py " + " ".join(sys.argv[1:])
    header = f"# Written by {command.strip()} on {datetime.date.today()}; do not edit by hand, rerun the script.\n"
    if not args.no_write:
        out = Path(args.out_dir)
        atomic_write_text(out / "remainder.yaml", header + yaml.safe_dump(config.model_dump(), sort_keys=False))
        atomic_write_text(out / "photos.yaml", header + yaml.safe_dump(photos.model_dump(), sort_keys=False))
        print(f"wrote {out / 'remainder.yaml'} and {out / 'photos.yaml'}")

    # 4. compare the complete model with real truth
    model = DecayModel.from_dec_file(args.dec_file, remainder=RemainderModel(config, masses={p: v.mass for p, v in table.particles.items()}), photos=photos)
    compare(model, events, rng, args, started, command, fitted=True)


def _remainder_from(folder: Path, dec_file) -> RemainderModel:
    config = load_remainder_config(folder / "remainder.yaml")
    table = load_dec_file(dec_file, extra=tuple(code for pdg in config.species for code in (pdg, -pdg)))
    return RemainderModel(config, masses={pdg: props.mass for pdg, props in table.particles.items()})


def compare(model: DecayModel, events, rng, args, started: float, command: str, *, fitted: bool) -> None:
    """Generate as many events as ``events``, then print, plot and record the class comparison."""
    generated = generated_events(model, len(events), rng)
    real_summary = class_summary(events)
    generated_summary = class_summary(generated)
    rows = [("real BESIII truth", real_summary), ("generator (DEC + remainder)", generated_summary)]
    print_table(rows)
    plot(real_summary, generated_summary, REPO / "benchmarks" / "plots" / "remainder_classes.png", "generator")
    elapsed = time.perf_counter() - started
    if not args.no_write:
        append_results(rows, command, elapsed, args.dec_file, fitted=fitted)
    print(f"done in {elapsed:.1f} s")


def print_table(rows) -> None:
    print(f"{'sample':30s} {'trees':>7s} {'once':>7s} {'top20':>6s} {'top99':>6s} {'top1000':>7s} {'finals':>7s}  charged 0/2/4/6/8")
    for name, s in rows:
        charged = "/".join(f"{s['charged'][k]:.3f}" for k in (0, 2, 4, 6, 8))
        print(f"{name:30s} {s['trees']:7d} {s['singletons']:7d} {s['top20']:6.3f} {s['top99']:6.3f} {s['top1000']:7.3f} {s['final_states']:7d}  {charged}")


SECTION_TITLE = "## Decay-tree classes: generator vs real truth"


def append_results(rows, command: str, elapsed: float, dec_file, *, fitted: bool) -> None:
    """Write the comparison table into RESULTS.md, replacing the section of an earlier run and keeping all others."""
    lines = [
        f"{SECTION_TITLE} ({datetime.date.today()}, {provenance()})",
        "",
        f"Command: `.venv/bin/python {command.strip()}` ({elapsed:.0f} s{', tuning included' if fitted else ''}); "
        f"table: {dec_file or 'decaylanguage DECAY_LHCB.DEC'}.",
        "Equal sizes; trees and final states counted with the topology package's TopoAna labels "
        "(`pmse_graph.topology.tree.label_flat`), as `pmse-graph topology` counts them.",
        "",
        "| sample | events | distinct trees | once | top-20 | top-99 | top-1000 | final states | charged 0 / 2 / 4 / 6 / 8 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rows:
        charged = " / ".join(f"{s['charged'][k]:.3f}" for k in (0, 2, 4, 6, 8))
        lines.append(f"| {name} | {s['events']} | {s['trees']} | {s['singletons']} | {s['top20']:.3f} | {s['top99']:.3f} | {s['top1000']:.3f} | {s['final_states']} | {charged} |")
    path = REPO / "benchmarks" / "RESULTS.md"
    existing = path.read_text() if path.is_file() else "# Benchmark results\n"
    start = existing.find(SECTION_TITLE)
    if start < 0:
        text = existing.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    else:
        end = existing.find("\n## ", start + len(SECTION_TITLE))
        rest = existing[end:] if end >= 0 else "\n"
        text = existing[:start] + "\n".join(lines) + "\n" + rest
    atomic_write_text(path, text)
    print(f"wrote the section to {path}")


if __name__ == "__main__":
    main()
