"""Small networks shared by the tests of many networks (matrices, the store, clusters)."""

from __future__ import annotations

from pathlib import Path

import nnstd
import numpy as np
import scipy.sparse as sp

WIDTHS = (30, 20, 20, 5)


def random_network(rng: np.random.Generator, density: float = 0.2) -> nnstd.Network:
    return nnstd.Network(
        [rng.random((WIDTHS[k], WIDTHS[k + 1])) < density for k in range(len(WIDTHS) - 1)]
    )


def save_paper_folder(net: nnstd.Network, folder: Path) -> Path:
    """The paper's layout: weight_l<k>.npz of shape (inputs + 1, neurons), the bias row last."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(net.depth):
        layer = net.layer(k)
        bias = np.ones((1, layer.shape[1]))
        sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(sp.vstack([layer, bias])))
    return folder
