"""Run metrics: a JSON-lines log, optional TensorBoard scalars, and a loss-curve PNG.

Every record is one JSON object per line in ``metrics.jsonl`` with a ``kind`` (``"step"`` or
``"epoch"``), the global ``step``, the ``epoch`` and the scalar values. Only rank 0 writes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pmse_graph.config import atomic_write_text

logger = logging.getLogger(__name__)


class MetricsLogger:
    """Appends metric records to ``metrics.jsonl`` and, when installed, to TensorBoard.

    Args:
        path: the JSON-lines file; appended to, so a resumed run continues the same file.
        enabled: False on ranks other than 0, which then write nothing.
        tensorboard_dir: folder for TensorBoard event files; ``None`` disables them. Missing
            ``tensorboard`` only logs one info line.
    """

    def __init__(self, *, path: str | Path, enabled: bool = True, tensorboard_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a")
            if tensorboard_dir is not None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:
                    logger.info("tensorboard is not installed; metrics go to %s only", self.path)
                else:
                    self._writer = SummaryWriter(log_dir=str(tensorboard_dir))

    def log(self, *, kind: str, step: int, epoch: int, values: Mapping[str, float]) -> None:
        """Write one record; non-finite values are written as ``null``."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"kind": kind, "step": step, "epoch": epoch}
        for name, value in values.items():
            value = float(value)
            record[name] = value if math.isfinite(value) else None
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{kind}/{name}", float(value), step)

    def close(self) -> None:
        """Flush and close the file and the TensorBoard writer."""
        if not self.enabled:
            return
        self._stream.close()
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Return every record of a ``metrics.jsonl`` file, in order."""
    with Path(path).open() as stream:
        return [json.loads(line) for line in stream if line.strip()]


def plot_loss_curves(*, metrics_path: str | Path, png_path: str | Path) -> Path | None:
    """Draw every ``loss*`` series of the step records against the step, to a PNG.

    Args:
        metrics_path: the run's ``metrics.jsonl``.
        png_path: output image, written atomically.

    Returns:
        The PNG path, or ``None`` when there are no step records yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [record for record in read_metrics(metrics_path) if record["kind"] == "step"]
    if not records:
        return None
    names = sorted({key for record in records for key in record if key.startswith("loss")})

    figure, axis = plt.subplots(figsize=(8, 5))
    for name in names:
        points = [(record["step"], record[name]) for record in records if record.get(name) is not None]
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values, label=name, linewidth=1.2)
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("loss")
    axis.set_title("Pretraining losses")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()

    png_path = Path(png_path)
    tmp_path = png_path.with_name(f".{png_path.name}.tmp.png")
    figure.savefig(tmp_path, dpi=120)
    plt.close(figure)
    tmp_path.replace(png_path)
    return png_path


def write_json(path: str | Path, content: Mapping[str, Any]) -> None:
    """Write ``content`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(content, indent=2, sort_keys=True) + "\n")
