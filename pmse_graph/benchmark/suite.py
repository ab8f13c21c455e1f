"""The side-by-side encoder benchmark, end to end: :func:`run_benchmark`.

Steps, all in one output folder:

1. generate the pretraining events (seed ``s``) and the evaluation events (seed ``s + 1``);
2. build the graph encoder and the two transformers (without and with the pair-feature bias)
   at the width that matches the graph encoder's parameter count;
3. pretrain each encoder with the same seeds and the same number of epochs. Then embed the
   evaluation events, score the probe, kNN, fine-tuning and training from scratch, cluster at
   each k, score kNN after each epoch, and time and count a training step;
4. score the cut-based rho pi selection on the same test events;
5. write ``results.json``, CSV tables and PNG plots, and optionally append the markdown summary
   to ``benchmarks/RESULTS.md`` (:mod:`pmse_graph.benchmark.record`).
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pmse_graph.benchmark import compute, quality
from pmse_graph.benchmark.config import BenchConfig, SizeSection
from pmse_graph.benchmark.confusions import confusion_pairs, confusion_shares
from pmse_graph.config import apply_overrides, load_config
from pmse_graph.data.graphs import build_batch
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.downstream.clustering import cluster_embeddings
from pmse_graph.downstream.embed import embed_events
from pmse_graph.downstream.labels import labelled_mask, top_classes
from pmse_graph.downstream.results_io import read_embeddings
from pmse_graph.downstream.run_loader import load_run, resolve_device
from pmse_graph.errors import ConfigError, PmseError
from pmse_graph.models import EncoderConfig, ModelInputSpec, match_transformer_width
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.run import run_pretraining
from pmse_graph.resources import config_path

logger = logging.getLogger(__name__)


def simulate_events(*, num_events: int, seed: int, out: Path) -> Path:
    """Generate ``num_events`` events with the default decay table and detector; return the folder."""
    from pmse_graph.simulation.decay_model import DecayModel
    from pmse_graph.simulation.detector import DetectorResponse
    from pmse_graph.simulation.generator import SimulationConfig, simulate

    if (out / "topology.csv").is_file():
        found = int(pd.read_csv(out / "topology.csv")["count"].sum())
        if found != num_events:
            raise ConfigError(f"{out} contains {found} generated events, but this size needs {num_events}. Choose another --out for another size or --scale")
        logger.info("reusing the %d events in %s", found, out)
        return out
    config = SimulationConfig(num_events=num_events, seed=seed, decay_source="DEC file: decaylanguage's DECAY_LHCB.DEC")
    simulate(model=DecayModel.from_dec_file(None), response=DetectorResponse.from_config(None), config=config, out_dir=out, progress=False)
    return out


def encoder_configs(config: BenchConfig, spec: ModelInputSpec) -> dict[str, EncoderConfig]:
    """Return the compared encoders, the transformers resized to the graph encoder's parameter count."""
    graph = config.encoder
    if graph.kind != "graph":
        raise ConfigError(f"Expected the benchmark's 'encoder' to be the graph encoder (got kind={graph.kind!r})")
    plain = graph.model_copy(update={"kind": "transformer", "pooling": None, "pair_bias": False})
    choices = {
        "graph": graph,
        "transformer": match_transformer_width(graph, spec, transformer=plain),
        "transformer_pair_bias": match_transformer_width(graph, spec, transformer=plain.model_copy(update={"pair_bias": True})),
    }
    return {name: choices[name] for name in config.encoders}


def pretrain_config(config: BenchConfig, size: SizeSection, encoder: EncoderConfig) -> PretrainConfig:
    """Return the base pretraining config with this encoder, the size's budget and the seed."""
    path = Path(config.pretrain_config)
    base = load_config(PretrainConfig, path if path.is_file() else config_path(config.pretrain_config))
    return apply_overrides(base, {
        "encoder": encoder.model_dump(mode="python"),
        "epochs": size.epochs,
        "seed": config.seed,
        "data.batch_size": size.batch_size,
        "optim.warmup_steps": size.warmup_steps,
        "compile": False,
    })


def timing_batch(run_dir: Path, files: list[str], *, events: int):
    """Build one batch of the first ``events`` evaluation events with the run's input pipeline."""
    run = load_run(run_dir)
    chunk = next(iterate_chunks(files, run.schema, step_size=events, validate=False))
    return run, build_batch(chunk.slice(0, events), run.standardizer, schema=run.schema, include_p4=False)


def _cluster(embeddings: Path, out: Path, *, k_values: list[int], num_events: int, seed: int) -> dict[int, dict]:
    results = {}
    for k in k_values:
        if k >= num_events:
            logger.warning("skipping k-means with k = %d: only %d events", k, num_events)
            continue
        start = time.perf_counter()
        summary = cluster_embeddings(embeddings, out_dir=out / f"k{k}", k=k, seed=seed, tsne_points=0, compare_sample=0)
        quality_tree = summary["quality"]["decay_tree"]
        results[k] = {"nmi": quality_tree["nmi"], "ari": quality_tree["ari"], "purity": quality_tree["purity"], "seconds": time.perf_counter() - start}
    return results


def benchmark_encoder(name: str, *, config: BenchConfig, size: SizeSection, encoder: EncoderConfig, data: dict[str, Path], task, out: Path,
                      compile_check: bool) -> dict:
    """Pretrain, evaluate and time one encoder; return its results (tables under ``"tables"``)."""
    run_dir = out / "runs" / name
    embeddings = out / "embeddings" / name
    eval_files = sorted(str(path) for path in data["eval"].glob("*.root"))
    logger.info("encoder %s: pretraining %d epochs", name, size.epochs)
    start = time.perf_counter()
    fit = run_pretraining(config=pretrain_config(config, size, encoder), data=[str(data["pretrain"])], out=run_dir)
    pretrain_seconds = time.perf_counter() - start
    if fit.status != "completed":
        raise PmseError(f"Pretraining of the {name} encoder was interrupted at step {fit.step}; the benchmark stops. Rerun with --overwrite")
    embed_events(run_dir=run_dir, data=eval_files, out=embeddings, progress=False, overwrite=True)

    methods = quality.classify_encoder(embeddings=embeddings, run_dir=run_dir, data=eval_files, task=task, out=out / "classify" / name,
                                       finetune_epochs=size.finetune_epochs, seed=config.seed, scratch_dir=out / "runs" / f"{name}_scratch")
    arrays = read_embeddings(embeddings)
    clusters = _cluster(embeddings, out / "cluster" / name, k_values=size.k_values, num_events=len(arrays.event_id), seed=config.seed)
    by_epoch = quality.knn_accuracy_by_epoch(run_dir=run_dir, data=eval_files, task=task, epochs=size.epochs, work=out / "work" / name, seed=config.seed)
    # training seconds up to each epoch's end, for the comparison at the same wall-clock budget
    for row, seconds in zip(by_epoch, np.cumsum([epoch.get("seconds", float("nan")) for epoch in fit.epoch_losses])):
        row["pretrain_seconds"] = float(seconds)

    run, batch = timing_batch(run_dir, eval_files, events=size.timing_batch)
    device = resolve_device("auto")
    batch = batch.to(device)
    # the peak is measured right before the encoder's timing, so both see the same machine load
    peak_flops = compute.matmul_peak(size=size.matmul_size, repeats=size.timing_repeats, device=device)
    logger.info("measured fp32 matmul peak: %.1f GFLOP/s", peak_flops / 1e9)
    speed = compute.measure_encoder(copy.deepcopy(run.encoder).to(device), batch, repeats=size.timing_repeats, peak_flops=peak_flops, seed=config.seed)
    backends = compute.measure_compile(copy.deepcopy(run.encoder).to(device), batch, repeats=size.timing_repeats) if compile_check else None

    return {
        "encoder": encoder.model_dump(mode="json"),
        "pretrain": {"seconds": pretrain_seconds, "epochs": fit.epoch, "steps": fit.step, "status": fit.status,
                     "events": sum(row.get("events", 0.0) for row in fit.epoch_losses)},
        "methods": {method: result["summary"] for method, result in methods.items()},
        "clustering": clusters,
        "knn_by_epoch": by_epoch,
        "compute": {**speed, "matmul_peak_flops": peak_flops},
        "backends": backends,
        "tables": methods,
    }


DERIVED_FOLDERS = ("runs", "embeddings", "classify", "cluster", "work", "selection")


def run_benchmark(*, config: BenchConfig, out: str | Path, tiny: bool = False, scale: float = 1.0, compile_check: bool = False, overwrite: bool = False) -> dict:
    """Run the whole benchmark into ``out`` and return ``results.json``'s content plus the tables.

    Args:
        config: the benchmark configuration.
        out: output folder; generated events already in it are reused.
        tiny: use ``sizes.tiny`` instead of ``sizes.default``.
        scale: multiplies the event counts (for GPUs and larger runs).
        compile_check: also time training steps with ``torch.compile`` and record torch-scatter.
        overwrite: delete the runs, embeddings and scores of an earlier benchmark in ``out``
            (the generated events are kept); without it such folders raise ConfigError.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = [out / name for name in DERIVED_FOLDERS if (out / name).exists()]
    if earlier and not overwrite:
        raise ConfigError(f"{out} already contains benchmark results ({', '.join(p.name for p in earlier)}). Pass --overwrite to replace them or choose another --out")
    for folder in earlier:
        shutil.rmtree(folder)
    size = config.size(tiny=tiny, scale=scale)
    started = time.perf_counter()

    # same data for every encoder
    data = {
        "pretrain": simulate_events(num_events=size.pretrain_events, seed=config.seed, out=out / "events" / "pretrain"),
        "eval": simulate_events(num_events=size.eval_events, seed=config.seed + 1, out=out / "events" / "eval"),
    }
    topology = pd.read_csv(data["eval"] / "topology.csv")

    # same task and test events for every encoder: the top classes on the labelled half
    base = pretrain_config(config, size, config.encoder)
    spec = ModelInputSpec.from_schema(load_schema(base.data.schema_name))
    encoders = encoder_configs(config, spec)

    eval_files = sorted(str(path) for path in data["eval"].glob("*.root"))
    task = evaluation_task(eval_files, schema_name=base.data.schema_name, step_size=base.data.step_size, top=size.top)
    results: dict = {"size": size.model_dump(), "scale": scale, "tiny": tiny, "seed": config.seed, "encoders": {}}
    for name, encoder in encoders.items():
        torch.manual_seed(config.seed)
        results["encoders"][name] = benchmark_encoder(name, config=config, size=size, encoder=encoder, data=data, task=task, out=out,
                                                      compile_check=compile_check)

    # the confusions and the selection baseline on the same test events
    results["classes"] = [int(i) for i in task.class_ids]
    pairs = confusion_pairs(topology, task.class_ids, max_pairs=size.confusion_pairs)
    confusion_tables = []
    for name, result in results["encoders"].items():
        for method, tables in result["tables"].items():
            predictions = tables["predictions"]
            shares = confusion_shares(pairs, predictions["true_class"].to_numpy(), predictions["predicted_class"].to_numpy())
            confusion_tables.append(shares.assign(encoder=name, method=method))
    results["confusions"] = pd.concat(confusion_tables, ignore_index=True) if confusion_tables else pairs
    test_event_id = next(iter(results["encoders"].values()))["tables"]["probe"]["predictions"]["event_id"].to_numpy()
    results["selection"] = quality.selection_baseline(files=eval_files, topology_path=data["eval"] / "topology.csv", test_event_id=test_event_id, out=out / "selection")
    results["rho_pi_classes"] = quality.rho_pi_classes(topology)
    results["seconds"] = time.perf_counter() - started
    return results


def evaluation_task(files: list[str], *, schema_name: str, step_size: int, top: int):
    """Read the labels of the evaluation files and choose the ``top`` classes on their labelled half.

    The labels do not depend on the encoder, so every encoder is scored on the same classes.
    """
    schema = load_schema(schema_name)
    event_ids, labels = [], []
    for chunk in iterate_chunks(files, schema, step_size=step_size, validate=False):
        event_ids.append(chunk.event_id)
        labels.append(chunk.y)
    event_id, y = np.concatenate(event_ids), np.concatenate(labels)
    return top_classes(y[labelled_mask(event_id, quality.LABELLED_FRACTION)], top=top)
