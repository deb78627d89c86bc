"""Shared figure plumbing: matplotlib without a display, and a figure as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110

__all__ = ["DPI", "plt", "png"]


def png(fig) -> bytes:
    """``fig`` as PNG bytes (tight bounding box, :data:`DPI`); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
