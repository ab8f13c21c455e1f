"""``pmse-graph cluster``: k-means or HDBSCAN of event embeddings, scored against the truth classes.

Example::

    pmse-graph cluster --embeddings emb/ --k 100000 --seed 1 --out clusters/
    pmse-graph cluster --embeddings emb/ --method hdbscan --min-cluster-size 20 --out clusters_hdbscan/
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def cluster(
    embeddings: Annotated[Path, typer.Option("--embeddings", help="Embedding folder from 'pmse-graph embed', or a .npy file (with an optional .parquet of the same stem).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for assignments.parquet, metrics.json, per_class.csv, centroids.npy and the t-SNE PNG.")],
    k: Annotated[int | None, typer.Option("--k", help="Number of k-means clusters (required for kmeans).")] = None,
    method: Annotated[str, typer.Option("--method", help="Clustering method: kmeans or hdbscan.")] = "kmeans",
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling, faiss and t-SNE.")] = 0,
    kmeans_method: Annotated[
        str, typer.Option("--kmeans-method", help="auto (flat up to k = 2048, two-level above), flat or two_level.")
    ] = "auto",
    niter: Annotated[
        Optional[int], typer.Option("--niter", help="k-means iterations (default 20 for flat, 10 at each level of two-level).")
    ] = None,
    refine_iterations: Annotated[int, typer.Option("--refine-iterations", help="Lloyd iterations after two-level training.")] = 0,
    probe: Annotated[
        int, typer.Option("--probe", help="Coarse groups searched per event when assigning to two-level centroids; more is slower and closer to exact.")
    ] = 2,
    max_points_per_centroid: Annotated[int, typer.Option("--max-points-per-centroid", help="k-means training events per centroid.")] = 256,
    compare_sample: Annotated[
        int, typer.Option("--compare-sample", help="Events on which two-level and flat k-means objectives are compared; 0 skips it.")
    ] = 50_000,
    min_cluster_size: Annotated[int, typer.Option("--min-cluster-size", help="HDBSCAN smallest cluster, in events.")] = 20,
    min_samples: Annotated[int, typer.Option("--min-samples", help="HDBSCAN neighbours that define a core event.")] = 10,
    max_fit_points: Annotated[
        int, typer.Option("--max-fit-points", help="Events HDBSCAN clusters itself; each other event takes its nearest clustered event's cluster if within that cluster's reach, else noise.")
    ] = 200_000,
    nonfinite: Annotated[
        str, typer.Option("--nonfinite", help="NaN or infinite embeddings: raise (stop with their event ids) or drop (cluster -1, counted).")
    ] = "raise",
    tsne_points: Annotated[int, typer.Option("--tsne-points", help="Events in the t-SNE map of the top-20 classes; 0 skips it.")] = 5_000,
    topology: Annotated[
        Optional[Path], typer.Option("--topology", help="topology.csv naming the decay trees (default: the one recorded by 'pmse-graph embed', if any).")
    ] = None,
) -> None:
    """Cluster event embeddings and score the clusters against the decay-tree and final-state classes."""
    from pmse_graph.downstream.clustering import cluster_embeddings

    summary = cluster_embeddings(
        embeddings,
        out_dir=out,
        method=method,
        k=k,
        seed=seed,
        kmeans_method=kmeans_method,
        niter=niter,
        refine_iterations=refine_iterations,
        probe=probe,
        max_points_per_centroid=max_points_per_centroid,
        compare_sample=compare_sample,
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        max_fit_points=max_fit_points,
        nonfinite=nonfinite,
        tsne_points=tsne_points,
        topology=topology,
    )
    _print_summary(summary, out)


def _print_summary(summary: dict, out: Path) -> None:
    typer.echo(f"{summary['num_events']} events of dim {summary['dim']}, {summary['num_nonfinite_skipped']} non-finite skipped")
    if "kmeans" in summary:
        kmeans = summary["kmeans"]
        typer.echo(
            f"k-means ({kmeans['method']}, assignment {kmeans['assignment_search']}): k={kmeans['k']}, "
            f"{kmeans['empty_clusters']} empty, objective {kmeans['objective']:.4g}, trained in {kmeans['train_seconds']:.1f} s"
        )
        if "ratio" in kmeans.get("objective_vs_flat", {}):
            comparison = kmeans["objective_vs_flat"]
            typer.echo(
                f"two-level / flat objective on {comparison['sample_points']} events, k={comparison['k']}: {comparison['ratio']:.3f}"
            )
    else:
        hdbscan = summary["hdbscan"]
        typer.echo(f"HDBSCAN: {hdbscan['num_clusters']} clusters, noise {100 * hdbscan['noise_fraction']:.1f}%")
        if summary["all_noise"]:
            typer.echo("HDBSCAN found no cluster: every event is noise (cluster -1); lower --min-cluster-size or --min-samples")
    for name, quality in summary["quality"].items():
        if quality["nmi"] is None:
            typer.echo(f"{name}: no event with a known class outside noise, metrics not computed")
            continue
        typer.echo(
            f"{name}: purity {quality['purity']:.3f}, NMI {quality['nmi']:.3f}, ARI {quality['ari']:.3f}, "
            f"homogeneity {quality['homogeneity']:.3f}, completeness {quality['completeness']:.3f}, "
            f"{quality['num_clusters']} non-empty clusters, {quality['num_classes']} classes"
        )
    typer.echo(f"Wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``cluster`` command to ``app``."""
    app.command("cluster")(cluster)
