"""Heat maps of NNSTD matrices, including the paper's Figure 4, and their evolution in training.

Functions return a `matplotlib.figure.Figure` built without pyplot, so they work with any backend
and leave no global state; save with ``fig.savefig(path)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["evolution", "figure4", "heatmap"]

CMAP = "gnuplot"  # the paper's colour map


def heatmap(
    ax: Axes, matrix: npt.NDArray[np.float64], names: Sequence[str], title: str = ""
) -> None:
    """Draw one distance matrix on ``ax``: colour map 'gnuplot' from 0 to 1, a colour bar,
    network names as tick labels.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> heatmap(fig.add_subplot(), np.array([[0.0, 0.4], [0.4, 0.0]]), ["w0", "w1"], "demo")
    """
    image = ax.imshow(matrix, cmap=CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=list(names), rotation=90 if len(names) > 12 else 0)
    ax.set_yticks(ticks, labels=list(names))
    ax.set_xlabel("network")
    ax.set_ylabel("network")
    if title:
        ax.set_title(title)
    assert ax.figure is not None
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def figure4(
    matrices: Sequence[npt.NDArray[np.float64]],
    titles: Sequence[str],
    names: Sequence[str],
    suptitle: str = "",
) -> Figure:
    """The paper's Figure 4: one heat map per epoch in a grid.

    Examples
    --------
    >>> import numpy as np
    >>> fig = figure4([np.zeros((3, 3))] * 2, ["epoch 0", "epoch 10"], ["a", "b", "c"])
    >>> len([ax for ax in fig.axes if ax.get_title()])
    2
    """
    count = len(matrices)
    cols = count if count <= 3 else (3 if count in (4, 6, 9) else 4)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(4.4 * cols, 4.0 * rows), layout="constrained")
    for k, (matrix, title) in enumerate(zip(matrices, titles, strict=True)):
        heatmap(fig.add_subplot(rows, cols, k + 1), matrix, names, title)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def evolution(
    epochs: Sequence[float],
    means: npt.NDArray[np.float64],
    spreads: npt.NDArray[np.float64],
    layer_names: Sequence[str],
    xlabels: Sequence[str] | None = None,
) -> Figure:
    """Mean (line) and spread (band, one standard deviation) of the off-diagonal distances per
    epoch, one line per layer: how far apart the networks drift during training.

    Examples
    --------
    >>> import numpy as np
    >>> fig = evolution([0, 10], np.array([[0.1, 0.2]]), np.array([[0.0, 0.1]]), ["layer 0"])
    >>> len(fig.axes)
    1
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.asarray(epochs, dtype=float)
    for mean, spread, name in zip(means, spreads, layer_names, strict=True):
        ax.plot(x, mean, marker="o", label=name)
        ax.fill_between(x, mean - spread, mean + spread, alpha=0.2)
    if xlabels is not None:
        ax.set_xticks(x, labels=list(xlabels))
    ax.set_xlabel("epoch")
    ax.set_ylabel("NNSTD between networks (off-diagonal)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
