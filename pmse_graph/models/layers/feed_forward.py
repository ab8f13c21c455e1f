"""Position-wise feed-forward layer used by both encoders' residual blocks."""

from __future__ import annotations

from torch import Tensor, nn


class FeedForward(nn.Module):
    """Two linear maps with a GELU between them and dropout after each.

    Args:
        dim: input and output size.
        hidden: hidden size.
        dropout: dropout probability, default 0.
    """

    def __init__(self, dim: int, *, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Shapes: x (..., dim) -> (..., dim)."""
        return self.net(x)
