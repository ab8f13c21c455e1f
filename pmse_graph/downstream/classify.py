"""The top-N decay-class task on embeddings: linear probe, kNN, fine-tuning, and their evaluation.

:func:`run_classification` reads an embeddings folder, keeps the ``top`` largest decay-tree
classes (counted on the labelled events), and splits events by a hash of their id into a
labelled share and an unlabelled rest. Each method trains on the labelled events minus a
calibration subset, fits a temperature on that subset, and predicts the unlabelled events of
the top classes, which are the only ones evaluated:

* ``probe``: a linear classifier (LayerNorm + Linear) on the frozen embeddings,
* ``knn``: a cosine-similarity k-nearest-neighbour vote with faiss,
* ``finetune``: the encoder plus a classification head trained end to end on the ROOT files
  (:mod:`pmse_graph.downstream.finetune`).

The folder ``out`` receives ``predictions.parquet``, ``metrics.json``, ``per_class.csv``,
``where_classes_go.csv``, ``operating_points.csv`` and, per method, ``confusion_<method>.png``
and ``precision_recall_<method>.png``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch

from pmse_graph.config import atomic_write_text
from pmse_graph.downstream import class_metrics
from pmse_graph.downstream.class_names import ClassNames, add_tree_columns, load_class_names
from pmse_graph.downstream.class_plots import plot_confusion, plot_precision_recall
from pmse_graph.downstream.labels import ClassTask, calibration_mask, labelled_task
from pmse_graph.downstream.neighbours import SearchIndex, build_search_index, search_batched
from pmse_graph.atomic import atomic_write_frame
from pmse_graph.downstream.results_io import EmbeddingArrays, read_embeddings
from pmse_graph.errors import ConfigError, DataError
from pmse_graph.models import ClassificationHead

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("probe", "knn", "finetune")


@dataclass
class MethodOutput:
    """Scores of one method on the calibration and evaluation events.

    Shapes:
        calibration_logits: (num_calibration, N); evaluation_logits: (num_evaluated, N).
    """

    calibration_logits: np.ndarray
    calibration_index: np.ndarray
    evaluation_logits: np.ndarray
    evaluation_index: np.ndarray
    evaluation_event_id: np.ndarray


@dataclass(frozen=True)
class ProbeSettings:
    """Training of the linear probe: AdamW over shuffled mini-batches with cosine decay.

    ``min_steps`` raises the number of epochs on small inputs, where 30 epochs of 4096-event
    batches would be only a few dozen steps.
    """

    epochs: int = 30
    min_steps: int = 300
    batch_size: int = 4096
    lr: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0


def train_linear_probe(vectors: np.ndarray, labels: np.ndarray, *, num_classes: int, settings: ProbeSettings = ProbeSettings()) -> ClassificationHead:
    """Fit a LayerNorm + Linear classifier on frozen embeddings with the cross-entropy loss.

    Shapes:
        vectors: (num_events, D) float32; labels: (num_events,) class indices.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    head = ClassificationHead(x.shape[1], num_classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    batches_per_epoch = -(-len(x) // settings.batch_size)
    epochs = max(settings.epochs, -(-settings.min_steps // batches_per_epoch))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    head.train()
    for _ in range(epochs):
        for index in torch.randperm(len(x), generator=generator).split(settings.batch_size):
            loss = torch.nn.functional.cross_entropy(head(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    logger.info("linear probe: final mini-batch loss %.4f after %d epochs on %d events", float(loss.detach()), epochs, len(x))
    return head.eval()


def head_logits(head: torch.nn.Module, vectors: np.ndarray, *, batch_size: int = 65_536) -> np.ndarray:
    """Apply ``head`` to embeddings in batches and return float32 logits (num_events, N)."""
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    with torch.inference_mode():
        return torch.cat([head(part) for part in x.split(batch_size)]).numpy() if len(x) else np.zeros((0, head.net[-1].out_features), np.float32)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    faiss.normalize_L2(out)
    return out


def knn_index(reference: np.ndarray) -> SearchIndex:
    """Index the L2-normalised ``reference`` vectors for the cosine-similarity search of :func:`knn_logits`."""
    return build_search_index(_normalized(reference), metric="inner_product")


def knn_logits(
    reference: np.ndarray,
    reference_labels: np.ndarray,
    queries: np.ndarray,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    index: SearchIndex | None = None,
) -> np.ndarray:
    """Score classes by a similarity-weighted vote of the ``k`` nearest labelled events.

    Neighbours are found by cosine similarity s (faiss inner-product search on L2-normalised
    vectors, exact up to 100,000 reference events and through an IVF index above). Each votes
    for its class with weight exp(s / temperature). The logits returned are
    log(vote share + 1e-6), so the softmax at temperature 1 gives back the vote shares up to
    the smoothing. Pass ``index`` from :func:`knn_index` to search several query sets against
    the same reference without indexing it again.

    Shapes:
        reference: (R, D); reference_labels: (R,); queries: (Q, D) -> (Q, num_classes).
    """
    if k > len(reference):
        logger.warning("kNN: k = %d exceeds the %d labelled training events; using k = %d", k, len(reference), len(reference))
        k = len(reference)
    index = knn_index(reference) if index is None else index
    similarity, neighbour = search_batched(index, _normalized(queries), k)
    weights = np.exp((similarity - 1.0) / temperature)  # shifted by the maximum similarity 1 to avoid overflow
    # one weighted count over (query, class) pairs, in place of a slow unbuffered np.add.at
    cells = np.repeat(np.arange(len(queries)), k) * num_classes + np.asarray(reference_labels)[neighbour].ravel()
    votes = np.bincount(cells, weights=weights.ravel().astype(np.float64), minlength=len(queries) * num_classes).reshape(len(queries), num_classes)
    shares = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-300)
    return np.log(shares + 1e-6).astype(np.float32)


def _frozen_method(method: str, arrays: EmbeddingArrays, index: np.ndarray, train: np.ndarray, calibration: np.ndarray, evaluate: np.ndarray, task: ClassTask, *, k: int, probe: ProbeSettings) -> MethodOutput:
    if method == "probe":
        head = train_linear_probe(arrays.vectors[train], index[train], num_classes=task.num_classes, settings=probe)
        calibration_logits = head_logits(head, arrays.vectors[calibration])
        evaluation_logits = head_logits(head, arrays.vectors[evaluate])
    else:
        reference, reference_labels = arrays.vectors[train], index[train]
        search = knn_index(reference)
        calibration_logits = knn_logits(reference, reference_labels, arrays.vectors[calibration], num_classes=task.num_classes, k=k, index=search)
        evaluation_logits = knn_logits(reference, reference_labels, arrays.vectors[evaluate], num_classes=task.num_classes, k=k, index=search)
    return MethodOutput(calibration_logits, index[calibration], evaluation_logits, index[evaluate], arrays.event_id[evaluate])


def _with_class_ids(table: pd.DataFrame, method: str, class_ids: np.ndarray) -> pd.DataFrame:
    """Replace the ``class_index`` column by ``class_id`` and prepend the method name."""
    table = table.rename(columns={"class_index": "class_id"})
    table["class_id"] = class_ids[table["class_id"].to_numpy()]
    table.insert(0, "method", method)
    return table


def evaluate_method(
    name: str, output: MethodOutput, task: ClassTask, out: Path, *, min_precision: float, min_recall: float, pr_classes: int, names: ClassNames | None = None
) -> dict:
    """Calibrate one method's scores, compute its metrics and plots, and return its tables.

    With ``names``, the tables get the tree string of each class beside its id and the plots
    label classes by their shortened trees.
    """
    if len(output.calibration_index) == 0:
        raise DataError(f"{name}: no labelled calibration events. Raise --labelled-fraction or use more events")
    temperature = class_metrics.fit_temperature(output.calibration_logits, output.calibration_index)
    probabilities = class_metrics.softmax(output.evaluation_logits, temperature=temperature)
    predicted = probabilities.argmax(axis=1)
    truth = output.evaluation_index
    ids = task.class_ids

    per_class = class_metrics.per_class_scores(truth, predicted, num_classes=task.num_classes)
    summary = class_metrics.summary_scores(per_class)
    where = class_metrics.where_classes_go(truth, predicted, num_classes=task.num_classes)
    points = class_metrics.operating_points(probabilities, truth, min_precision=min_precision, min_recall=min_recall)
    per_class, points = (_with_class_ids(table, name, ids) for table in (per_class, points))
    where.insert(0, "method", name)
    where["true_class"] = ids[where.pop("true_index")]
    where["predicted_class"] = ids[where.pop("predicted_index")]
    where = where[["method", "true_class", "predicted_class", "events", "share"]]
    per_class = add_tree_columns(per_class, names, {"class_id": "tree"})
    points = add_tree_columns(points, names, {"class_id": "tree"})
    where = add_tree_columns(where, names, {"true_class": "true_tree", "predicted_class": "predicted_tree"})

    matrix = class_metrics.class_confusion(truth, predicted, num_classes=task.num_classes)
    plot_confusion(matrix, ids, out / f"confusion_{name}.png", title=f"{name}: share of each true class", labels=_labels(ids, names))
    chosen = list(range(min(pr_classes, task.num_classes)))
    curves = class_metrics.precision_recall_points(probabilities, truth, chosen)
    plot_precision_recall({_labels([ids[i]], names)[0]: curve for i, curve in curves.items()}, out / f"precision_recall_{name}.png",
                          title=f"{name}: the {len(chosen)} largest classes", min_precision=min_precision, min_recall=min_recall)

    predictions = pd.DataFrame({
        "method": name,
        "event_id": output.evaluation_event_id,
        "true_class": ids[truth],
        "predicted_class": ids[predicted],
        "probability": probabilities[np.arange(len(predicted)), predicted].astype(np.float32),
        "true_class_probability": probabilities[np.arange(len(truth)), truth].astype(np.float32),
    })
    summary.update(temperature=temperature, calibration_events=int(len(output.calibration_index)))
    return {"summary": summary, "per_class": per_class, "where": where, "points": points, "predictions": predictions}


def _labels(class_ids, names: ClassNames | None) -> list[str]:
    """Plot labels of class ids: shortened trees with names, else ``class ID``."""
    return [names.label(value) if names else f"class {int(value)}" for value in class_ids]


def _selected_methods(method: str) -> list[str]:
    if method == "all":
        return list(METHODS)
    if method not in METHODS:
        raise ConfigError(f"Invalid method '{method}': expected one of {(*METHODS, 'all')}")
    return [method]


def run_classification(
    *,
    embeddings: str | Path,
    out: str | Path,
    method: str = "all",
    top: int = 99,
    labelled_fraction: float = 0.5,
    calibration_fraction: float = 0.2,
    k: int = 20,
    min_precision: float = 0.99,
    min_recall: float = 0.90,
    pr_classes: int = 5,
    probe: ProbeSettings = ProbeSettings(),
    run_dir: str | Path | None = None,
    data: Sequence[str] = (),
    finetune_options: dict | None = None,
    topology: str | Path | None = None,
) -> dict:
    """Train and evaluate the chosen methods on the top-``top`` classes and write the results.

    Args:
        embeddings: folder written by ``pmse-graph embed``.
        out: results folder, created when missing.
        method: ``"probe"``, ``"knn"``, ``"finetune"`` or ``"all"`` (default). ``"all"`` skips
            fine-tuning, with a log line, when ``run_dir`` or ``data`` is missing.
        top: number of largest classes kept (default 99).
        labelled_fraction: share of events treated as labelled (default 0.5).
        calibration_fraction: share of the labelled events that fits the temperature instead of
            the classifier (default 0.2).
        k: neighbours of the kNN classifier (default 20).
        min_precision: precision target of the operating points (default 0.99).
        min_recall: recall target of the operating points (default 0.90).
        pr_classes: number of largest classes drawn in the precision-recall plots (default 5).
        probe: linear-probe training settings.
        run_dir: pretraining run folder, needed for fine-tuning.
        data: ROOT files for fine-tuning (the files that were embedded).
        finetune_options: keyword arguments of :func:`pmse_graph.downstream.finetune.finetune_logits`.
        topology: ``topology.csv`` naming the classes; default the first table recorded in the
            embeddings' metadata, if it exists. Without one the tables keep bare class ids.

    Returns:
        The content of ``metrics.json``.

    Raises:
        ConfigError: invalid options, or ``method="finetune"`` without ``run_dir`` and ``data``.
        DataError: invalid embeddings or too few labelled events.
    """
    methods = _selected_methods(method)
    if "finetune" in methods and (run_dir is None or not data):
        if method == "finetune":
            raise ConfigError("Fine-tuning needs --run and --data (the run folder and the ROOT files that were embedded)")
        logger.info("skipping fine-tuning: --run and --data were not given")
        methods.remove("finetune")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # the task: top classes counted on the labelled events only
    arrays = read_embeddings(embeddings)
    names = load_class_names(topology, arrays.metadata)
    labelled, task, index = labelled_task(arrays.event_id, arrays.y, labelled_fraction=labelled_fraction, top=top)
    calibration = labelled & calibration_mask(arrays.event_id, calibration_fraction) & (index >= 0)
    train = labelled & ~calibration & (index >= 0)
    evaluate = ~labelled & (index >= 0)
    if not train.any() or not evaluate.any():
        raise DataError(f"Too few events: {int(train.sum())} labelled training and {int(evaluate.sum())} unlabelled events in the top {task.num_classes} classes")
    logger.info("%d classes; %d training, %d calibration, %d evaluated events", task.num_classes, int(train.sum()), int(calibration.sum()), int(evaluate.sum()))

    results = {}
    for name in methods:
        logger.info("classification method: %s", name)
        if name == "finetune":
            from pmse_graph.downstream.finetune import finetune_logits

            output = finetune_logits(run_dir=run_dir, data=data, task=task, labelled_fraction=labelled_fraction, calibration_fraction=calibration_fraction, **(finetune_options or {}))
        else:
            output = _frozen_method(name, arrays, index, train, calibration, evaluate, task, k=k, probe=probe)
        results[name] = evaluate_method(name, output, task, out, min_precision=min_precision, min_recall=min_recall, pr_classes=pr_classes, names=names)

    # machine-readable outputs
    atomic_write_frame(pd.concat([r["predictions"] for r in results.values()], ignore_index=True), out / "predictions.parquet")
    atomic_write_frame(pd.concat([r["per_class"] for r in results.values()], ignore_index=True), out / "per_class.csv")
    atomic_write_frame(pd.concat([r["where"] for r in results.values()], ignore_index=True), out / "where_classes_go.csv")
    atomic_write_frame(pd.concat([r["points"] for r in results.values()], ignore_index=True), out / "operating_points.csv")
    metrics = {
        "embeddings": str(Path(embeddings).resolve()),
        "top": top,
        "classes": task.class_ids.tolist(),
        "topology": None if names is None else names.source,
        "labelled_class_counts": task.counts.tolist(),
        "labelled_fraction": labelled_fraction,
        "calibration_fraction": calibration_fraction,
        "training_events": int(train.sum()),
        "evaluated_events": int(evaluate.sum()),
        "events_outside_top_classes": int((index < 0).sum()),
        "min_precision": min_precision,
        "min_recall": min_recall,
        "methods": {name: r["summary"] for name, r in results.items()},
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
