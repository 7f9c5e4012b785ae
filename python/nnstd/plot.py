"""Heat maps of NNSTD matrices, including the paper's Figure 4, and their evolution in training.

Functions return a `matplotlib.figure.Figure` built without pyplot, so they work with any backend
and leave no global state; save with ``fig.savefig(path)``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Patch

from nnstd._paper import CMAP, PANEL_COLUMNS
from nnstd.analysis import convergence_index

__all__ = [
    "clustered_heatmap",
    "consecutive",
    "convergence_index",
    "evolution",
    "figure4",
    "heatmap",
    "mds_coordinates",
    "mds_embedding",
]

# Where the untrained networks ('init') go on the evolution plot's epoch axis, as a fraction of
# the epoch range before epoch 0, past a marked break.
INIT_OFFSET = 0.08


def heatmap(
    ax: Axes, matrix: npt.NDArray[np.float64], names: Sequence[str], title: str = ""
) -> None:
    """Draw one distance matrix on ``ax``: colour map 'gnuplot' from 0 to 1, a colour bar,
    network names as tick labels.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure, SubFigure
    >>> fig = Figure()
    >>> heatmap(fig.add_subplot(), np.array([[0.0, 0.4], [0.4, 0.0]]), ["w0", "w1"], "demo")
    """
    image = ax.imshow(matrix, cmap=CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=list(names), rotation=90)
    ax.set_yticks(ticks, labels=list(names))
    ax.set_xlabel("Network")
    ax.set_ylabel("Network")
    if title:
        ax.set_title(title)
    assert ax.figure is not None
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def _missing_panel(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_box_aspect(1)
    ax.text(0.5, 0.5, "not in this\ntopology set", ha="center", va="center", color="0.4")


def figure4(
    matrices: Sequence[npt.NDArray[np.float64] | None],
    captions: Sequence[str],
    names: Sequence[str],
    title: str = "Layer 0",
    note: str = "",
) -> Figure:
    """The paper's Figure 4: one heat map per snapshot, three to a row, each titled ``title``
    (the paper's "Layer 0") and captioned below (``"(a) Epoch 0"``, ...).

    A ``None`` matrix draws an empty panel marked as missing; ``note`` is printed under the
    panels (say there what is missing or stands in for what).

    Examples
    --------
    >>> import numpy as np
    >>> fig = figure4([np.zeros((3, 3)), None], ["(a) Epoch 0", "(b) Epoch 10"], ["a", "b", "c"])
    >>> [sf.get_supxlabel() for sf in fig.subfigs]
    ['(a) Epoch 0', '(b) Epoch 10']
    """
    count = len(matrices)
    cols = min(count, PANEL_COLUMNS)
    rows = math.ceil(count / cols)
    note_height = 0.5 if note else 0.0
    fig = Figure(figsize=(4.3 * cols, 4.5 * rows + note_height), layout="constrained")
    panels_area: Figure | SubFigure = fig
    if note:
        areas = fig.subfigures(2, 1, height_ratios=[4.5 * rows, note_height], squeeze=False)
        panels_area, footer = areas[0][0], areas[1][0]
        wrapped = textwrap.fill(note, width=int(48 * cols))
        footer.text(0.5, 0.5, wrapped, ha="center", va="center", fontsize=9, style="italic")
    grid = panels_area.subfigures(rows, cols, squeeze=False)
    for k, (matrix, caption) in enumerate(zip(matrices, captions, strict=True)):
        panel = grid[k // cols][k % cols]
        ax = panel.add_subplot()
        if matrix is None:
            _missing_panel(ax, title)
        else:
            heatmap(ax, matrix, names, title)
        panel.supxlabel(caption, fontsize=15)
    return fig


def evolution(
    epochs: Sequence[float | None],
    means: npt.NDArray[np.float64],
    spreads: npt.NDArray[np.float64],
    layer_names: Sequence[str],
    pairs: int | None = None,
    note: str = "",
) -> Figure:
    """Mean (line) and one standard deviation (band) of the distances between networks at each
    snapshot, one line per layer: how far apart the networks drift during training.

    ``epochs`` are numbers on a true epoch axis; ``None`` (the untrained networks) is drawn
    before epoch 0, past a marked break. ``pairs`` (the number of network pairs the statistics
    are over) goes into the legend; ``note`` under the plot.

    Examples
    --------
    >>> import numpy as np
    >>> fig = evolution([None, 0, 10], np.array([[0.1, 0.2, 0.3]]), np.zeros((1, 3)), ["layer 0"])
    >>> fig.axes[0].get_xlabel()
    'epoch (snapshot after that epoch)'
    """
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    numbers = [e for e in epochs if e is not None]
    span = (max(numbers) - min(numbers)) if len(numbers) > 1 else 10.0
    init_x = (min(numbers) if numbers else 0.0) - INIT_OFFSET * span
    x = np.array([init_x if e is None else e for e in epochs], dtype=float)
    trained = np.array([e is not None for e in epochs])
    for mean, spread, name in zip(means, spreads, layer_names, strict=True):
        (line,) = ax.plot(x[trained], mean[trained], marker="o", label=name)
        colour = line.get_color()
        ax.fill_between(x, mean - spread, mean + spread, alpha=0.2, color=colour, linewidth=0)
        for k in np.flatnonzero(~trained):  # the untrained networks, across the axis break
            ax.plot(x[k], mean[k], marker="o", color=colour)
            after = k + 1 if k + 1 < len(x) else k
            ax.plot(x[[k, after]], mean[[k, after]], linestyle=":", color=colour)
    band = Patch(
        color="0.6",
        alpha=0.4,
        label="±1 standard deviation" + (f" over the {pairs} pairs" if pairs else ""),
    )
    if not trained.all() and numbers:
        cut = init_x + INIT_OFFSET * span / 2
        ax.axvline(cut, color="0.5", linestyle=(0, (2, 2)), linewidth=1)
        on_axis = ax.get_xaxis_transform()
        ax.text(cut, 0, "//", transform=on_axis, ha="center", va="center", fontsize=11)
        ticks = [t for t in ax.get_xticks() if min(numbers) <= t <= max(numbers)]
        ax.set_xticks([init_x, *ticks], labels=["init", *(f"{t:g}" for t in ticks)])
    ax.set_xlabel("epoch (snapshot after that epoch)")
    ax.set_ylabel("NNSTD between networks")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, band], loc="lower right", fontsize=8)
    if note:
        fig.supxlabel(note, fontsize=8, style="italic")
    return fig


# ---- clustered heat map, MDS embedding, convergence ------------------------------------------


def _condensed(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The condensed form of a distance matrix, made symmetric (the mean of [i, j] and [j, i])
    with a zero diagonal, as `scipy.cluster.hierarchy.linkage` takes it."""
    from scipy.spatial.distance import squareform

    square = np.asarray(matrix, dtype=np.float64)
    if square.ndim != 2 or square.shape[0] != square.shape[1] or len(square) < 2:
        raise ValueError(f"expected a square matrix of at least 2 networks, got {square.shape}")
    if not np.all(np.isfinite(square)):
        raise ValueError("the matrix holds NaN or infinite values")
    symmetric = (square + square.T) / 2
    np.fill_diagonal(symmetric, 0.0)
    return np.asarray(squareform(symmetric, checks=False), dtype=np.float64)


def clustered_heatmap(
    matrix: npt.NDArray[np.float64],
    names: Sequence[str],
    title: str = "",
    method: str = "average",
) -> Figure:
    """A distance matrix as a heat map with rows and columns in the leaf order of a
    hierarchical clustering (``scipy.cluster.hierarchy``), its dendrogram above.

    ``method`` is the linkage (``"average"``, ``"complete"``, ``"single"``, ...); an ordered
    (non-symmetric) matrix is clustered on the mean of ``[i, j]`` and ``[j, i]``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[0, .9, .1], [.9, 0, .8], [.1, .8, 0]])
    >>> fig = clustered_heatmap(m, ["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[1].get_xticklabels()]
    ['b', 'a', 'c']
    """
    from scipy.cluster.hierarchy import dendrogram, linkage

    tree = linkage(_condensed(matrix), method=method)
    fig = Figure(figsize=(6.4, 7.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[1, 4])
    drawn = dendrogram(tree, ax=top, no_labels=True, color_threshold=0, above_threshold_color="0.3")
    order = [int(i) for i in drawn["leaves"]]
    top.set_ylabel("merge distance")
    top.set_xticks([])
    for side in ("top", "right", "bottom"):
        top.spines[side].set_visible(False)
    reordered = np.asarray(matrix, dtype=np.float64)[np.ix_(order, order)]
    heatmap(bottom, reordered, [names[i] for i in order], title)
    return fig


def mds_coordinates(matrix: npt.NDArray[np.float64], seed: int = 0) -> npt.NDArray[np.float64]:
    """Two-dimensional coordinates whose distances approximate the matrix: scikit-learn's
    metric MDS on the precomputed (symmetrised) matrix. Needs scikit-learn (``nnstd[views]``).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
    >>> xy = mds_coordinates(m)
    >>> bool(np.allclose(np.linalg.norm(xy[0] - xy[1]), 1, atol=0.05))
    True
    """
    import inspect

    try:
        from sklearn.manifold import MDS
    except ImportError:
        raise ImportError("the MDS view needs scikit-learn: pip install 'nnstd[views]'") from None
    from scipy.spatial.distance import squareform

    square = squareform(_condensed(matrix))
    params = inspect.signature(MDS).parameters
    options: dict[str, object] = {"n_components": 2, "random_state": seed, "n_init": 4}
    if "metric_mds" in params:  # scikit-learn >= 1.8 names the input 'metric'
        options.update(metric="precomputed", metric_mds=True, init="random")
    else:
        options["dissimilarity"] = "precomputed"
    if "normalized_stress" in params:
        options["normalized_stress"] = "auto"
    return np.asarray(MDS(**options).fit_transform(square), dtype=np.float64)


def mds_embedding(
    matrix: npt.NDArray[np.float64], names: Sequence[str], title: str = "", seed: int = 0
) -> Figure:
    """The networks as points in the plane (`mds_coordinates`), labelled with their names.

    Examples
    --------
    >>> import numpy as np
    >>> fig = mds_embedding(np.array([[0, .5, .9], [.5, 0, .6], [.9, .6, 0]]), ["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['a', 'b', 'c']
    """
    xy = mds_coordinates(matrix, seed)
    fig = Figure(figsize=(5.6, 5.2), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(xy[:, 0], xy[:, 1], color="tab:blue")
    for (x, y), name in zip(xy, names, strict=True):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=9)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title(title or "MDS embedding of the distance matrix")
    ax.grid(alpha=0.3)
    return fig


def consecutive(
    epochs: Sequence[float | None],
    distances: npt.NDArray[np.float64],
    names: Sequence[str],
    threshold: float,
    window: int,
    *,
    x_label: str | None = None,
) -> Figure:
    """Distance between consecutive snapshots of each network (``distances[n, i]``: network
    ``n`` between snapshot ``i`` and ``i + 1``, drawn at ``epochs[i + 1]``), the threshold as
    a dashed line and each network's convergence epoch (`convergence_index`) as a star.
    ``x_label`` names the x axis when ``epochs`` are not epochs (checkpoint positions).

    Examples
    --------
    >>> import numpy as np
    >>> fig = consecutive([0, 1, 2, 3], np.array([[.3, .05, .04]]), ["w0"], 0.1, 2)
    >>> fig.axes[0].get_ylabel()
    'NNSTD to the previous snapshot'
    """
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    x = np.array([np.nan if e is None else e for e in epochs[1:]], dtype=float)
    for row, name in zip(np.asarray(distances), names, strict=True):
        (line,) = ax.plot(x, row, marker="o", markersize=3, label=name)
        found = convergence_index(row, threshold, window)
        if found is not None:
            ax.plot(x[found], row[found], marker="*", markersize=14, color=line.get_color())
    ax.axhline(
        threshold, color="0.4", linestyle="--", linewidth=1, label=f"threshold {threshold:g}"
    )
    ax.set_xlabel(x_label or "epoch (snapshot after that epoch)")
    ax.set_ylabel("NNSTD to the previous snapshot")
    ax.set_title(f"★ converged: the last {window} consecutive distances below the threshold")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig
