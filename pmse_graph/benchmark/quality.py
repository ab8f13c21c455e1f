"""Quality measurements of one pretrained encoder on the evaluation events, and the selection baseline.

The evaluation events are split by the event-id hash of :mod:`pmse_graph.downstream.labels`:
half is labelled (training and temperature calibration of every classifier), the other half is
the test set, on which every method and the cut-based selection are scored. Only events of the
task's top classes are scored.

* :func:`classify_encoder`: linear probe, kNN, fine-tuning of the pretrained encoder and the same
  encoder trained from scratch on the labelled half, each through
  :func:`pmse_graph.downstream.classify.evaluate_method`;
* :func:`scratch_run`: a run folder whose encoder has fresh random weights;
* :func:`knn_accuracy_by_epoch`: kNN accuracy of each epoch's checkpoint;
* :func:`selection_baseline`: the rho pi selection scored on the same test events.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pmse_graph.downstream import class_metrics
from pmse_graph.downstream.classify import MethodOutput, ProbeSettings, evaluate_method, head_logits, knn_index, knn_logits, train_linear_probe
from pmse_graph.downstream.embed import embed_events
from pmse_graph.downstream.finetune import finetune_logits
from pmse_graph.downstream.labels import ClassTask, calibration_mask, labelled_mask
from pmse_graph.downstream.results_io import EmbeddingArrays, read_embeddings
from pmse_graph.downstream.run_loader import load_run
from pmse_graph.models import build_encoder
from pmse_graph.pretraining.checkpoint import LAST_NAME, epoch_checkpoint_name, load_checkpoint, save_checkpoint
from pmse_graph.pretraining.run import STANDARDIZER_NAME
from pmse_graph.selection import evaluate as selection_evaluate
from pmse_graph.selection.config import SelectionCuts
from pmse_graph.selection.run import run_selection
from pmse_graph.selection.selection import CLASSES, TRUTH_TREES, decide

logger = logging.getLogger(__name__)

LABELLED_FRACTION = 0.5
CALIBRATION_FRACTION = 0.2
MIN_PRECISION = 0.99
MIN_RECALL = 0.90
KNN_NEIGHBOURS = 20


@dataclass
class EvaluationSplit:
    """Boolean masks over the embedding rows (store order) of the evaluation events.

    Attributes:
        index: class index of each event in the task (-1 outside the top classes).
        train: labelled events that train the classifiers.
        calibration: labelled events that fit the softmax temperature.
        test: unlabelled events of the top classes, where everything is scored.
    """

    index: np.ndarray
    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray


def evaluation_split(arrays: EmbeddingArrays, task: ClassTask) -> EvaluationSplit:
    """Split embedding rows into training, calibration and test events, as ``pmse-graph classify`` does."""
    index = task.to_index(arrays.y)
    labelled = labelled_mask(arrays.event_id, LABELLED_FRACTION)
    calibration = labelled & calibration_mask(arrays.event_id, CALIBRATION_FRACTION) & (index >= 0)
    return EvaluationSplit(index=index, train=labelled & ~calibration & (index >= 0), calibration=calibration, test=~labelled & (index >= 0))


def scratch_run(run_dir: Path, out: Path, *, seed: int) -> Path:
    """Write a run folder like ``run_dir`` whose encoder has freshly initialised weights.

    Fine-tuning it trains the same architecture from scratch; the feature standardisation of the
    original run is kept, because it is fitted statistics, not learned weights.
    """
    run = load_run(run_dir)
    torch.manual_seed(seed)
    fresh = build_encoder(run.config.encoder, run.spec)
    payload = load_checkpoint(run.checkpoint)
    model = {key: value for key, value in payload["model"].items() if not key.startswith("encoder.")}
    model.update({f"encoder.{key}": value for key, value in fresh.state_dict().items()})
    out.mkdir(parents=True, exist_ok=True)
    for name in ("schema.yaml", STANDARDIZER_NAME):
        shutil.copy2(run_dir / name, out / name)
    save_checkpoint(out / "checkpoints" / LAST_NAME, {**payload, "model": model, "target": None, "step": 0})
    return out


def _frozen_output(method: str, arrays: EmbeddingArrays, split: EvaluationSplit, task: ClassTask, *, seed: int) -> MethodOutput:
    train_x, train_y = arrays.vectors[split.train], split.index[split.train]
    if method == "probe":
        head = train_linear_probe(train_x, train_y, num_classes=task.num_classes, settings=ProbeSettings(seed=seed))
        scores = [head_logits(head, arrays.vectors[mask]) for mask in (split.calibration, split.test)]
    else:
        search = knn_index(train_x)
        scores = [knn_logits(train_x, train_y, arrays.vectors[mask], num_classes=task.num_classes, k=KNN_NEIGHBOURS, index=search) for mask in (split.calibration, split.test)]
    return MethodOutput(scores[0], split.index[split.calibration], scores[1], split.index[split.test], arrays.event_id[split.test])


def calibrated_probabilities(output: MethodOutput) -> np.ndarray:
    """Softmax of the test logits at the temperature fitted on the calibration events (num_test, N)."""
    temperature = class_metrics.fit_temperature(output.calibration_logits, output.calibration_index)
    return class_metrics.softmax(output.evaluation_logits, temperature=temperature)


def classify_encoder(
    *, embeddings: Path, run_dir: Path, data: list[str], task: ClassTask, out: Path, finetune_epochs: int, seed: int, scratch_dir: Path
) -> dict[str, dict]:
    """Score the probe, kNN, fine-tuned and from-scratch classifiers of one encoder.

    Returns:
        Per method, the tables of :func:`evaluate_method` plus ``probabilities`` (num_test, N)
        and ``truth`` (num_test,) class indices, for precision-recall curves.
    """
    out.mkdir(parents=True, exist_ok=True)
    arrays = read_embeddings(embeddings)
    split = evaluation_split(arrays, task)
    tuning = {"labelled_fraction": LABELLED_FRACTION, "calibration_fraction": CALIBRATION_FRACTION, "epochs": finetune_epochs, "seed": seed, "progress": False}
    outputs = {
        "probe": _frozen_output("probe", arrays, split, task, seed=seed),
        "knn": _frozen_output("knn", arrays, split, task, seed=seed),
        "finetune": finetune_logits(run_dir=run_dir, data=data, task=task, **tuning),
        "scratch": finetune_logits(run_dir=scratch_run(run_dir, scratch_dir, seed=seed), data=data, task=task, encoder_lr_scale=1.0, head_init="random", **tuning),
    }
    results = {}
    for method, output in outputs.items():
        result = evaluate_method(method, output, task, out, min_precision=MIN_PRECISION, min_recall=MIN_RECALL, pr_classes=5)
        result.update(probabilities=calibrated_probabilities(output), truth=output.evaluation_index)
        results[method] = result
    return results


def knn_accuracy_by_epoch(*, run_dir: Path, data: list[str], task: ClassTask, epochs: int, work: Path, seed: int) -> list[dict[str, float]]:
    """Embed the evaluation events with each epoch's checkpoint and score the kNN classifier.

    Returns:
        One ``{"epoch", "accuracy", "macro_f1"}`` per epoch (1-based epochs).
    """
    rows = []
    for epoch in range(epochs):
        folder = work / f"epoch_{epoch + 1}"
        embed_events(run_dir=run_dir, data=data, out=folder, checkpoint=run_dir / "checkpoints" / epoch_checkpoint_name(epoch), progress=False, overwrite=True)
        arrays = read_embeddings(folder)
        split = evaluation_split(arrays, task)
        output = _frozen_output("knn", arrays, split, task, seed=seed)
        predicted = output.evaluation_logits.argmax(axis=1)
        scores = class_metrics.summary_scores(class_metrics.per_class_scores(output.evaluation_index, predicted, num_classes=task.num_classes))
        rows.append({"epoch": epoch + 1, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
        shutil.rmtree(folder)
    return rows


def rho_pi_classes(topology: pd.DataFrame) -> dict[str, int]:
    """Map each selection class name (``"pi+ rho-"``, ...) to its decay-tree id in ``topology``."""
    ids = {TRUTH_TREES[tree]: int(i) for i, tree in zip(topology["id"], topology["tree"]) if tree in TRUTH_TREES}
    return {name: ids[name] for name in CLASSES if name in ids}


def selection_baseline(*, files: list[str], topology_path: Path, test_event_id: np.ndarray, out: Path, scan_points: int = 21) -> dict:
    """Run the cut-based selection and score it on the test events only.

    Returns:
        ``working_point`` (per class precision, recall, F1 and counts), ``scan`` (the same per
        tightness), ``recall_at_99_precision`` per class and ``seconds``.
    """
    cuts = SelectionCuts()
    report = run_selection(files, out_dir=out, cuts=cuts, scan=True, topology=topology_path, progress=False)
    frame = report.frame
    event_id = frame["run"].to_numpy(np.int64) * (1 << 32) + frame["event"].to_numpy(np.int64)
    keep = np.isin(event_id, test_event_id)
    if not keep.any():
        logger.warning("selection baseline: none of the %d test events found among the selection's %d events", len(test_event_id), len(frame))
    subset = frame[keep].reset_index(drop=True)
    truth = subset["truth"].to_numpy()
    scan = []
    for tightness in np.linspace(0.0, 1.0, scan_points):
        predicted = decide(subset, cuts=cuts, tightness=float(tightness)).predicted
        scan.append({"tightness": float(tightness), "classes": selection_evaluate.class_metrics(truth, predicted)})
    return {
        "events": int(keep.sum()),
        "working_point": selection_evaluate.class_metrics(truth, subset["predicted"].to_numpy()),
        "scan": scan,
        "recall_at_99_precision": selection_evaluate.recall_at_precision(scan, target=MIN_PRECISION),
        "seconds": report.seconds,
    }
