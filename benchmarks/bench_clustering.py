"""Time and peak memory of flat and two-level k-means and of HDBSCAN against N and k.

Small run, about 1 minute on 2 cores (dim 24 keeps HDBSCAN on fast_hdbscan's k-d tree path):
    .venv/bin/python benchmarks/bench_clustering.py --sizes 20000 --ks 100 1000 --dim 24 --hdbscan-sizes 10000 --append

Full run (hours on 2 cores; flat k-means is skipped above --flat-max-k, where it is impractical):
    .venv/bin/python benchmarks/bench_clustering.py --sizes 300000 1000000 3000000 --ks 1000 10000 100000 \
        --dim 128 --refine-iterations 2 --hdbscan-sizes 200000 1000000 --append

Data: a mixture of unit-width Gaussian components (N / 100, at least 10 and at most 2,000) with
random means in --dim dimensions, plus 5% uniform noise, generated in chunks. Each configuration runs in a fresh
process, so its peak resident memory (ru_maxrss) is its own; "peak MB above data" subtracts the
resident memory after the data were generated. k-means rows give the mean squared distance of
all events to their centroid; HDBSCAN rows the NMI against the mixture component (noise left out).
Prints a table and, with --append, adds it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import platform
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


def run_one(task: dict, results: multiprocessing.Queue) -> None:
    """Run one configuration in this (child) process and put its row on ``results``."""
    from sklearn.metrics import normalized_mutual_info_score

    from pmse_graph.downstream.density import fit_hdbscan
    from pmse_graph.downstream.kmeans import assign_clusters, fit_kmeans

    vectors, component = mixture(task["n"], task["dim"], seed=task["seed"])
    baseline = resident_mb()
    start = time.perf_counter()
    if task["method"] == "hdbscan":
        result = fit_hdbscan(vectors, min_cluster_size=20, min_samples=10, max_fit_points=task["max_fit_points"], seed=task["seed"])
        clustered = component >= 0
        quality = f"NMI {normalized_mutual_info_score(component[clustered], result.cluster[clustered]):.3f}, {result.num_clusters} clusters, noise {100 * result.noise_fraction:.1f}%"
    else:
        kmeans = fit_kmeans(
            vectors, k=task["k"], method=task["method"], niter=task["niter"], seed=task["seed"], refine_iterations=task["refine_iterations"]
        )
        assignment = assign_clusters(vectors, kmeans.centroids)
        quality = f"objective {assignment.objective:.4g} (assignment {assignment.search})"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.put({**task, "seconds": seconds, "peak_above_data_mb": max(0.0, peak - baseline), "quality": quality})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000], help="Event counts N for k-means.")
    parser.add_argument("--ks", type=int, nargs="+", default=[100, 1_000], help="Cluster counts k.")
    parser.add_argument("--dim", type=int, default=32, help="Embedding dimension.")
    parser.add_argument("--niter", type=int, default=10, help="k-means iterations.")
    parser.add_argument("--refine-iterations", type=int, default=0, help="IVF-assigned iterations after two-level training.")
    parser.add_argument("--flat-max-k", type=int, default=10_000, help="Largest k run with flat k-means.")
    parser.add_argument("--hdbscan-sizes", type=int, nargs="*", default=[10_000], help="Event counts N for HDBSCAN; none skips it.")
    parser.add_argument("--max-fit-points", type=int, default=200_000, help="Events HDBSCAN clusters itself; the rest by nearest neighbour.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data and of the methods.")
    parser.add_argument("--append", action="store_true", help="Append the table to benchmarks/RESULTS.md.")
    args = parser.parse_args()

    common = {"dim": args.dim, "seed": args.seed, "niter": args.niter, "refine_iterations": 0, "max_fit_points": args.max_fit_points, "k": 0}
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

    header = "| N | dim | k | method | seconds | peak MB above data | result |\n|---|---|---|---|---|---|---|"
    lines = []
    for row in rows:
        method = row["method"] + (f" + {row['refine_iterations']} IVF iterations" if row["refine_iterations"] else "")
        k = "" if row["method"] == "hdbscan" else f"{row['k']:,}"
        lines.append(f"| {row['n']:,} | {row['dim']} | {k} | {method} | {row['seconds']:.1f} | {row['peak_above_data_mb']:.0f} | {row['quality']} |")
    table = "\n".join([header, *lines])
    print(table)

    if args.append:
        command = "python benchmarks/bench_clustering.py " + " ".join(
            [f"--sizes {' '.join(map(str, args.sizes))}", f"--ks {' '.join(map(str, args.ks))}", f"--dim {args.dim}", f"--niter {args.niter}"]
            + ([f"--refine-iterations {args.refine_iterations}"] if args.refine_iterations else [])
            + ([f"--flat-max-k {args.flat_max_k}"] if args.flat_max_k != parser.get_default("flat_max_k") else [])
            + [f"--hdbscan-sizes {' '.join(map(str, args.hdbscan_sizes))}"]
        )
        section = (
            f"\n## Clustering: k-means and HDBSCAN ({datetime.date.today()}, {platform.node()}, {platform.machine()}, "
            f"{multiprocessing.cpu_count()} cores)\n\nCommand: `{command}`\n\n"
            f"Data: Gaussian mixture of N / {EVENTS_PER_COMPONENT} components (10 to {MAX_COMPONENTS}) plus {100 * NOISE_SHARE:.0f}% uniform noise; one process per row; "
            "HDBSCAN with min_cluster_size 20, min_samples 10.\n\n"
            f"{table}\n"
        )
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as stream:
            stream.write(section)


if __name__ == "__main__":
    main()
