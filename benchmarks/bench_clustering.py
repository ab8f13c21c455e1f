"""Time and peak memory of flat and two-level k-means and of HDBSCAN against N and k.

Small run, about 1 minute on 2 cores (dim 24 keeps HDBSCAN on fast_hdbscan's k-d tree path):
    .venv/bin/python benchmarks/bench_clustering.py --sizes 20000 --ks 100 1000 --dim 24 --hdbscan-sizes 10000 --append

Scaling run (flat k-means is skipped above --flat-max-k, where it is impractical):
    .venv/bin/python benchmarks/bench_clustering.py --sizes 300000 1000000 3000000 --ks 1000 10000 100000 \
        --dim 128 --flat-max-k 1000 --hdbscan-sizes 200000 1000000 --append --plot

Data: a mixture of unit-width Gaussian components (N / 100, at least 10 and at most 2,000) with
random means in --dim dimensions, plus 5% uniform noise, generated in chunks. Each configuration
runs in a fresh process. After the data are generated, the process resets its resident
high-water mark (Linux /proc/self/clear_refs), so "peak MB above data" is the peak while
clustering less the resident memory after generation; a row marked "(peak since start)" could
not reset it and includes the generation's temporaries. k-means rows give the training and the
assignment time, the mean squared distance of all events to their centroid and, for two-level
rows, the ratio of the two-level to the flat objective on a 50,000-event subsample (the check
that `pmse-graph cluster` runs; its time is not counted). HDBSCAN rows give the NMI against the
mixture component (noise left out). Prints a table and, with --append, adds it to
benchmarks/RESULTS.md; --plot draws seconds against N for each method and k into
benchmarks/plots/clustering_scaling.png.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_COMPONENTS = 2_000
EVENTS_PER_COMPONENT = 100
NOISE_SHARE = 0.05


def component_count(n: int) -> int:
    return int(np.clip(n // EVENTS_PER_COMPONENT, 10, MAX_COMPONENTS))


def mixture(n: int, dim: int, *, seed: int = 0, chunk: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(vectors, component)``: float32 ``(n, dim)`` events and their component (-1 for noise)."""
    rng = np.random.default_rng(seed)
    components = component_count(n)
    means = rng.normal(size=(components, dim)).astype(np.float32) * 4
    vectors = np.empty((n, dim), np.float32)
    component = rng.integers(0, components, n)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        vectors[start:stop] = means[component[start:stop]] + rng.normal(size=(stop - start, dim)).astype(np.float32)
    noisy = rng.random(n) < NOISE_SHARE
    vectors[noisy] = rng.uniform(-12, 12, size=(int(noisy.sum()), dim)).astype(np.float32)
    component[noisy] = -1
    return vectors, component


def resident_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak_resident() -> bool:
    """Reset this process's resident high-water mark (Linux 4.0+); return False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        return False
    return True


def peak_resident_mb() -> float:
    """Return the resident high-water mark (VmHWM) since the last reset, or since the start."""
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(task: dict, results: multiprocessing.Queue) -> None:
    """Run one configuration in this (child) process and put its row on ``results``."""
    from sklearn.metrics import normalized_mutual_info_score

    from pmse_graph.downstream.density import fit_hdbscan
    from pmse_graph.downstream.kmeans import assign_clusters, compare_with_flat, fit_kmeans

    vectors, component = mixture(task["n"], task["dim"], seed=task["seed"])
    baseline = resident_mb()
    # without the reset, the peak would include the temporaries of the data generation
    peak_reset = reset_peak_resident()
    start = time.perf_counter()
    train_seconds = assign_seconds = float("nan")
    iterations = None
    if task["method"] == "hdbscan":
        result = fit_hdbscan(vectors, min_cluster_size=20, min_samples=10, max_fit_points=task["max_fit_points"], seed=task["seed"])
        clustered = component >= 0
        quality = f"NMI {normalized_mutual_info_score(component[clustered], result.cluster[clustered]):.3f}, {result.num_clusters} clusters, noise {100 * result.noise_fraction:.1f}%"
    else:
        kmeans = fit_kmeans(
            vectors, k=task["k"], method=task["method"], niter=task["niter"], seed=task["seed"],
            refine_iterations=task["refine_iterations"], probe=task["probe"],
        )
        train_seconds = time.perf_counter() - start
        iterations = kmeans.niter
        assignment = assign_clusters(vectors, kmeans.centroids, tree=kmeans.tree, probe=task["probe"])
        assign_seconds = time.perf_counter() - start - train_seconds
        quality = f"objective {assignment.objective:.4g} (assignment {assignment.search})"
    seconds = time.perf_counter() - start
    peak = peak_resident_mb()
    if task["method"] == "two_level":
        comparison = compare_with_flat(vectors, k=task["k"], niter=task["niter"], seed=task["seed"])
        quality += f"; two-level / flat objective {comparison['ratio']:.3f} on {comparison['sample_points']:,} events, k={comparison['k']}"
    results.put({
        **task, "iterations": iterations, "seconds": seconds, "train_seconds": train_seconds, "assign_seconds": assign_seconds,
        "peak_above_data_mb": max(0.0, peak - baseline), "peak_reset": peak_reset, "quality": quality,
    })


def plot_scaling(rows: list[dict], path: Path) -> None:
    """Draw seconds against N, one line per method and k, on log-log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for key in sorted({(row["method"], row["k"]) for row in rows}):
        points = sorted((row["n"], row["seconds"]) for row in rows if (row["method"], row["k"]) == key)
        label = key[0] if key[0] == "hdbscan" else f"{key[0]} k={key[1]:,}"
        axes.plot([n for n, _ in points], [seconds for _, seconds in points], marker="o", label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("events N")
    axes.set_ylabel("wall seconds (train + assign every event)")
    axes.set_title(f"Clustering time, {multiprocessing.cpu_count()} cores, dim {rows[0]['dim']}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000], help="Event counts N for k-means.")
    parser.add_argument("--ks", type=int, nargs="+", default=[100, 1_000], help="Cluster counts k.")
    parser.add_argument("--dim", type=int, default=32, help="Embedding dimension.")
    parser.add_argument("--niter", type=int, default=None, help="k-means iterations (default: 20 for flat, 10 for two-level, as pmse-graph cluster).")
    parser.add_argument("--refine-iterations", type=int, default=0, help="Lloyd iterations after two-level training.")
    parser.add_argument("--probe", type=int, default=2, help="Coarse groups searched per event when assigning to two-level centroids.")
    parser.add_argument("--flat-max-k", type=int, default=10_000, help="Largest k run with flat k-means.")
    parser.add_argument("--hdbscan-sizes", type=int, nargs="*", default=[10_000], help="Event counts N for HDBSCAN; none skips it.")
    parser.add_argument("--max-fit-points", type=int, default=200_000, help="Events HDBSCAN clusters itself; the rest take their nearest fitted event's cluster within its reach.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data and of the methods.")
    parser.add_argument("--append", action="store_true", help="Append the table to benchmarks/RESULTS.md.")
    parser.add_argument("--plot", action="store_true", help="Draw benchmarks/plots/clustering_scaling.png.")
    args = parser.parse_args()

    common = {"dim": args.dim, "seed": args.seed, "niter": args.niter, "refine_iterations": 0, "probe": args.probe, "max_fit_points": args.max_fit_points, "k": 0}
    tasks = []
    for n in args.sizes:
        for k in args.ks:
            if k > n:
                continue
            if k <= args.flat_max_k:
                tasks.append({**common, "n": n, "k": k, "method": "flat"})
            tasks.append({**common, "n": n, "k": k, "method": "two_level", "refine_iterations": args.refine_iterations})
    tasks += [{**common, "n": n, "method": "hdbscan"} for n in args.hdbscan_sizes]

    context = multiprocessing.get_context("spawn")
    rows = []
    for task in tasks:
        queue = context.Queue()
        process = context.Process(target=run_one, args=(task, queue))
        process.start()
        row = queue.get()
        process.join()
        rows.append(row)
        print(f"{row['method']:>9} N={row['n']:>9,} k={row['k']:>7,}: {row['seconds']:8.1f} s, {row['peak_above_data_mb']:7.0f} MB, {row['quality']}", flush=True)

    header = "| N | dim | k | method | seconds | train s | assign s | peak MB above data | result |\n|---|---|---|---|---|---|---|---|---|"
    lines = []
    for row in rows:
        method = row["method"] + (f", {row['iterations']} iterations" if row["iterations"] else "")
        method += f" + {row['refine_iterations']} refinement iterations" if row["refine_iterations"] else ""
        k = "" if row["method"] == "hdbscan" else f"{row['k']:,}"
        split = " | ".join("" if np.isnan(row[name]) else f"{row[name]:.1f}" for name in ("train_seconds", "assign_seconds"))
        peak = f"{row['peak_above_data_mb']:.0f}" + ("" if row["peak_reset"] else " (peak since start)")
        lines.append(f"| {row['n']:,} | {row['dim']} | {k} | {method} | {row['seconds']:.1f} | {split} | {peak} | {row['quality']} |")
    table = "\n".join([header, *lines])
    print(table)

    if args.append:
        command = "python benchmarks/bench_clustering.py " + " ".join(
            [f"--sizes {' '.join(map(str, args.sizes))}", f"--ks {' '.join(map(str, args.ks))}", f"--dim {args.dim}"] + ([f"--niter {args.niter}"] if args.niter else [])
            + ([f"--refine-iterations {args.refine_iterations}"] if args.refine_iterations else [])
            + ([f"--probe {args.probe}"] if args.probe != parser.get_default("probe") else [])
            + ([f"--flat-max-k {args.flat_max_k}"] if args.flat_max_k != parser.get_default("flat_max_k") else [])
            + [f"--hdbscan-sizes {' '.join(map(str, args.hdbscan_sizes))}"]
            + ([f"--max-fit-points {args.max_fit_points}"] if args.max_fit_points != parser.get_default("max_fit_points") else [])
            + ([f"--seed {args.seed}"] if args.seed != parser.get_default("seed") else [])
        )
        from pmse_graph.benchmark.provenance import provenance

        section = (
            f"\n## Clustering: k-means and HDBSCAN ({datetime.date.today()}, {provenance()})\n\n"
            f"Command: `{command}`\n\n"
            f"Data: Gaussian mixture of N / {EVENTS_PER_COMPONENT} components (10 to {MAX_COMPONENTS}) plus {100 * NOISE_SHARE:.0f}% uniform noise; one process per row; "
            "HDBSCAN with min_cluster_size 20, min_samples 10.\n\n"
            f"{table}\n"
        )
        if args.plot:
            section += "\nPlot: `benchmarks/plots/clustering_scaling.png`.\n"
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as stream:
            stream.write(section)
    if args.plot:
        plot_scaling(rows, ROOT / "benchmarks" / "plots" / "clustering_scaling.png")


if __name__ == "__main__":
    main()
