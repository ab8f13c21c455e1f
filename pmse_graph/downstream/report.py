"""One page per pretraining run, in markdown and HTML: :func:`write_report`.

The page opens with one summary table across the results folders given: accuracy and
macro-F1 of each classification method, k (or the clusters HDBSCAN found) with purity and NMI
of each clustering, and the anomaly ROC AUC. Then come the run's ``run_info.json``, the last
epoch records of ``metrics.jsonl``, the loss curves and the configuration, and one section per
results folder (clustering, classification, anomaly) with the numbers of its ``metrics.json``,
the first rows of each CSV table and every PNG inside. Raw t-SNE coordinates are left out.
When a topology table names the classes (``--topology``, or the one the results recorded),
tables with class ids get a column of shortened tree strings. The markdown links images by relative path; the HTML embeds
them as base64 data, so the HTML file can be moved or mailed alone.

The page is built as a list of blocks (heading, text, table, image, code) rendered twice.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import pandas as pd

from pmse_graph.config import atomic_write_text
from pmse_graph.downstream.class_names import ClassNames, add_tree_columns, load_class_names, short_tree
from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.metrics import read_metrics

logger = logging.getLogger(__name__)

TABLE_ROWS = 20
# tables written by the commands that the report leaves out (raw t-SNE coordinates)
SKIPPED_TABLES = ("tsne_",)
# metrics.json keys left out of the key/value tables (the embed command's bookkeeping)
SKIPPED_KEYS = ("embedding_metadata",)
# class-id columns of the result tables and the tree column the report adds beside each
CLASS_COLUMNS = {"class": "tree", "class_id": "tree", "true_class": "true_tree", "predicted_class": "predicted_tree"}


@dataclass
class Block:
    """One element of the page: ``kind`` is heading, text, table, image or code."""

    kind: str
    content: Any
    level: int = 2


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys; lists of dicts are numbered, long lists shortened."""
    flat: dict[str, Any] = {}
    if isinstance(values, dict):
        for key, value in values.items():
            flat.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(values, list) and values and all(isinstance(item, dict) for item in values):
        for number, item in enumerate(values):
            flat.update(flatten(item, f"{prefix}{number}."))
    elif isinstance(values, list) and len(values) > 10:
        flat[prefix.rstrip(".")] = f"{values[:10]} ... ({len(values)} values)"
    else:
        flat[prefix.rstrip(".")] = values
    return flat


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _key_value_table(values: dict[str, Any]) -> pd.DataFrame:
    flat = flatten(values)
    return pd.DataFrame({"quantity": list(flat), "value": [_format_value(v) for v in flat.values()]})


def _run_blocks(run_dir: Path) -> list[Block]:
    blocks = [Block("heading", f"pmse-graph report: {run_dir.resolve().name}", level=1), Block("text", f"Run folder: `{run_dir.resolve()}`")]
    info_path = run_dir / "run_info.json"
    if info_path.is_file():
        blocks += [Block("heading", "Run information"), Block("table", _key_value_table(json.loads(info_path.read_text())))]
    metrics_path = run_dir / "metrics.jsonl"
    if metrics_path.is_file():
        epochs = [record for record in read_metrics(metrics_path) if record.get("kind") == "epoch"]
        if epochs:
            table = pd.DataFrame(epochs)
            columns = [name for name in table.columns if name in ("epoch", "step", "lr", "events_per_s", "seconds") or name.startswith("loss")]
            blocks += [Block("heading", "Training: epoch records"), Block("table", table[columns].tail(TABLE_ROWS))]
    if (run_dir / "loss_curves.png").is_file():
        blocks += [Block("heading", "Loss curves"), Block("image", run_dir / "loss_curves.png")]
    if (run_dir / "config.yaml").is_file():
        blocks += [Block("heading", "Configuration"), Block("code", (run_dir / "config.yaml").read_text())]
    return blocks


def _read_metrics(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _named(table: pd.DataFrame, names: ClassNames | None) -> pd.DataFrame:
    """Add tree columns beside class-id columns that lack them, and shorten every tree string."""
    if names is not None:
        missing_trees = {column: tree for column, tree in CLASS_COLUMNS.items() if column in table.columns and tree not in table.columns}
        table = add_tree_columns(table, names, missing_trees)
    table = table.copy()
    for column in table.columns:
        if str(column).endswith("tree"):
            table[column] = [short_tree(value) if isinstance(value, str) else value for value in table[column]]
    return table


def summary_table(*, clusters: list[Path], classify: Path | None, anomaly: Path | None) -> pd.DataFrame:
    """Build one row per result: classification methods, clusterings and the anomaly score.

    Columns: ``result``, ``method``, ``classes or k``, ``accuracy``, ``macro F1``, ``purity``,
    ``NMI``, ``ROC AUC``; cells that do not apply to a row are empty.
    """
    rows: list[dict[str, Any]] = []
    if classify is not None:
        metrics = _read_metrics(classify)
        for method, scores in metrics.get("methods", {}).items():
            rows.append({"result": "classification", "method": method, "classes or k": len(metrics.get("classes", [])),
                         "accuracy": scores.get("accuracy"), "macro F1": scores.get("macro_f1")})
    for folder in clusters:
        metrics = _read_metrics(folder)
        quality = metrics.get("quality", {}).get("decay_tree", {})
        if "kmeans" in metrics:
            method, size = f"k-means ({metrics['kmeans'].get('method')})", metrics["kmeans"].get("k")
        elif "hdbscan" in metrics:
            method, size = "HDBSCAN", metrics["hdbscan"].get("num_clusters")
        else:
            continue
        rows.append({"result": f"clustering {folder.name}", "method": method, "classes or k": size,
                     "purity": quality.get("purity"), "NMI": quality.get("nmi")})
    if anomaly is not None:
        metrics = _read_metrics(anomaly)
        if "roc_auc" in metrics:
            rows.append({"result": "anomaly", "method": f"kNN distance (k={metrics.get('k')})", "classes or k": metrics.get("known_classes"),
                         "ROC AUC": metrics["roc_auc"]})
    columns = ["result", "method", "classes or k", "accuracy", "macro F1", "purity", "NMI", "ROC AUC"]
    return pd.DataFrame(rows, columns=columns).astype(object).where(lambda frame: frame.notna(), "")


def _classification_tables(folder: Path, names: ClassNames | None) -> list[Block]:
    """Method summary, then the where-classes-go rows that leave their class, largest share first."""
    blocks: list[Block] = []
    metrics = _read_metrics(folder)
    summary = pd.DataFrame(metrics.get("methods", {})).T.reset_index(names="method")
    if not summary.empty:
        blocks += [Block("text", "Scores on the unlabelled events of the top classes:"), Block("table", summary)]
    where_path = folder / "where_classes_go.csv"
    if where_path.is_file():
        where = pd.read_csv(where_path, keep_default_na=False)
        moved = where[where["true_class"] != where["predicted_class"]].sort_values("share", ascending=False).head(TABLE_ROWS)
        blocks += [Block("text", "Where classes go: the largest shares of a class assigned to another class"), Block("table", _named(moved, names))]
    return blocks


def _results_blocks(title: str, folder: Path, names: ClassNames | None) -> list[Block]:
    if not folder.is_dir():
        raise ConfigError(f"Results folder not found: {folder}")
    blocks = [Block("heading", title), Block("text", f"Folder: `{folder.resolve()}`")]
    metrics_path = folder / "metrics.json"
    handled: set[str] = set()
    if metrics_path.is_file() and title == "Classification":
        blocks += _classification_tables(folder, names)
        handled.add("where_classes_go.csv")
    elif metrics_path.is_file():
        metrics = {key: value for key, value in _read_metrics(folder).items() if key not in SKIPPED_KEYS}
        blocks.append(Block("table", _key_value_table(metrics)))
    for path in sorted(folder.glob("*.json")):
        if path.name != "metrics.json":
            blocks += [Block("heading", path.name, level=3), Block("table", _key_value_table(json.loads(path.read_text())))]
    for path in sorted(folder.glob("*.csv")):
        if path.name in handled or path.name.startswith(SKIPPED_TABLES):
            continue
        table = pd.read_csv(path, keep_default_na=False)
        heading = f"{path.name} (first {min(TABLE_ROWS, len(table))} of {len(table)} rows)"
        blocks += [Block("heading", heading, level=3), Block("table", _named(table.head(TABLE_ROWS), names))]
    for path in sorted(folder.glob("*.png")):
        blocks += [Block("heading", path.name, level=3), Block("image", path)]
    return blocks


def _default_topology(folders: list[Path]) -> str | None:
    """Return the topology table a results folder recorded, else the first one its embeddings recorded."""
    for folder in folders:
        metrics = _read_metrics(folder)
        recorded = metrics.get("topology") or next(iter((metrics.get("embedding_metadata") or {}).get("topology_tables") or []), None)
        if recorded and Path(recorded).is_file():
            return recorded
    return None


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return _format_value(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def render_markdown(blocks: list[Block], *, base: Path) -> str:
    """Render the blocks as markdown, with image paths relative to the folder ``base``."""
    parts = []
    for block in blocks:
        if block.kind == "heading":
            parts.append("#" * block.level + " " + block.content)
        elif block.kind == "text":
            parts.append(block.content)
        elif block.kind == "table":
            parts.append(_markdown_table(block.content))
        elif block.kind == "image":
            parts.append(f"![{block.content.name}]({Path(os.path.relpath(block.content, base)).as_posix()})")
        elif block.kind == "code":
            parts.append("```yaml\n" + block.content.rstrip() + "\n```")
    return "\n\n".join(parts) + "\n"


def render_html(blocks: list[Block], *, title: str) -> str:
    """Render the blocks as one self-contained HTML page (images embedded as base64 PNG)."""
    parts = []
    for block in blocks:
        if block.kind == "heading":
            parts.append(f"<h{block.level}>{html.escape(block.content)}</h{block.level}>")
        elif block.kind == "text":
            parts.append(f"<p>{html.escape(block.content.replace('`', ''))}</p>")
        elif block.kind == "table":
            parts.append(block.content.to_html(index=False, float_format=lambda value: f"{value:.4g}", border=0, classes="table"))
        elif block.kind == "image":
            data = base64.b64encode(block.content.read_bytes()).decode("ascii")
            parts.append(f'<img alt="{html.escape(block.content.name)}" src="data:image/png;base64,{data}">')
        elif block.kind == "code":
            parts.append(f"<pre>{html.escape(block.content)}</pre>")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%;margin:0.5em 0}pre{background:#f4f4f4;padding:0.8em;font-size:12px}"
    )
    body = "\n".join(parts)
    return f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>{style}</style></head>\n<body>\n{body}\n</body></html>\n"


def write_report(
    *,
    run_dir: str | Path,
    out: str | Path,
    cluster: str | Path | Sequence[str | Path] | None = None,
    classify: str | Path | None = None,
    anomaly: str | Path | None = None,
    topology: str | Path | None = None,
) -> tuple[Path, Path]:
    """Write ``<out>.md`` and ``<out>.html`` for a run and the results folders given.

    Args:
        run_dir: pretraining run folder.
        out: output file; a ``.md`` or ``.html`` suffix is replaced, so both files share a stem.
        cluster: folder written by ``pmse-graph cluster``, or a list of them (one per k), optional.
        classify: folder written by ``pmse-graph classify``, optional.
        anomaly: folder written by ``pmse-graph anomaly``, optional.
        topology: ``topology.csv`` naming the classes; default the table the results recorded.

    Returns:
        The paths of the markdown and HTML files.

    Raises:
        ConfigError: the run folder or a results folder is missing.
        DataError: the ``topology`` file is missing or is not a topology table.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a pretraining run folder (config.yaml not found). Pass the --out folder of 'pmse-graph pretrain'")
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".md", ".html") else out
    markdown_path, html_path = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".html")
    markdown_path.parent.mkdir(parents=True, exist_ok=True)

    if cluster is None:
        clusters = []
    elif isinstance(cluster, (str, os.PathLike)):
        clusters = [Path(cluster)]
    else:
        clusters = [Path(item) for item in cluster]
    classify_dir = None if classify is None else Path(classify)
    anomaly_dir = None if anomaly is None else Path(anomaly)
    sections = [(f"Clustering {folder.name}" if len(clusters) > 1 else "Clustering", folder) for folder in clusters]
    sections += [(title, folder) for title, folder in (("Classification", classify_dir), ("Anomaly detection", anomaly_dir)) if folder is not None]
    for _, folder in sections:
        if not folder.is_dir():
            raise ConfigError(f"Results folder not found: {folder}")
    names = load_class_names(topology if topology is not None else _default_topology([folder for _, folder in sections]))

    run_blocks = _run_blocks(run_dir)
    blocks = run_blocks[:2]
    summary = summary_table(clusters=clusters, classify=classify_dir, anomaly=anomaly_dir)
    if not summary.empty:
        blocks += [Block("heading", "Summary"), Block("table", summary)]
    if names is not None:
        blocks.append(Block("text", f"Decay trees named from `{names.source}`."))
    blocks += run_blocks[2:]
    for title, folder in sections:
        blocks += _results_blocks(title, folder, names)
    atomic_write_text(markdown_path, render_markdown(blocks, base=markdown_path.parent.resolve()))
    atomic_write_text(html_path, render_html(blocks, title=f"pmse-graph report: {run_dir.name}"))
    logger.info("report written: %s and %s", markdown_path, html_path)
    return markdown_path, html_path
