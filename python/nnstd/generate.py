"""Generate topologies like the paper's: an initial chain of rewired sparse MLPs, trained with SET.

The paper's set-up (Liu et al., ECML-PKDD 2020): one sparse network at 0.6% density; nine more,
each changing 1% of the previous one's connections; every network then trained with Sparse
Evolutionary Training (SET, Mocanu et al., Nature Communications 2018), which after each epoch
removes the fraction ``zeta`` of each sparse layer's weights closest to zero and regrows as many
at random empty positions, so the number of connections stays constant.

Here the data set is scikit-learn's bundled handwritten digits (1,797 images of 8x8, no download),
upsampled to 28x28 = 784 inputs. Plain numpy/scipy: this is not the hot path.

As in the paper's runs (all ten with seed 0), the networks share one random stream: the same
data order and, for part of every SET update, the same regrowth positions; the rest of the
regrowth comes from each network's own stream (``regrow_shared``). With independent streams
(the first version of this generator) the networks drifted apart 50% faster than the paper's
in the first epoch. ``topo/README.md`` in the source tree (the bundled set) has the
measurements behind the defaults.

Snapshots are written in the paper's layout, ``OUT/<network>/<snapshot>/weight_l<k>.npz``
(``scipy.sparse.save_npz``, shape ``(n_in + 1, n_out)``, bias row last): ``init`` is the
untrained network, ``epoch_NNN`` the network after epoch NNN's training and topology update
(as in the paper, ``epoch_000`` is already after the first update). ``testacc.txt`` in each
network folder holds the test accuracy after every epoch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from nnstd._paper import (
    PAPER_DENSITY,
    PAPER_EPOCHS,
    PAPER_NETWORKS,
    PAPER_REWIRE,
    PAPER_SNAPSHOTS,
    PAPER_ZETA,
)

__all__ = ["SetConfig", "generate"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SetConfig:
    """Parameters of the experiment; the defaults generated the bundled topologies."""

    widths: tuple[int, ...] = (784, 784, 784, 784, 10)
    density: float = PAPER_DENSITY  # of each sparse (hidden) layer
    networks: int = PAPER_NETWORKS
    rewire: float = PAPER_REWIRE  # fraction of connections moved between consecutive networks
    epochs: int = PAPER_EPOCHS  # trains epochs 0 .. epochs-1
    snapshots: tuple[int, ...] = PAPER_SNAPSHOTS
    zeta: float = PAPER_ZETA  # SET's rewiring fraction per epoch
    learning_rate: float = 0.01
    grad_clip: float = 5.0  # global gradient norm per batch; keeps long SET runs stable
    init_std: float = 0.0  # sparse weights start N(0, init_std^2); 0: He, for the fan-in
    regrow_std: float = 0.1  # weights of regrown connections start small
    shared_stream: bool = True  # every network trains with the same random stream
    regrow_shared: float = 0.4  # fraction of SET's regrown positions drawn from that stream
    momentum: float = 0.9
    weight_decay: float = 0.0005  # lets unused initial connections fade and be replaced
    batch_size: int = 32
    seed: int = 0
    test_fraction: float = 0.2
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (len(self.widths) >= 2, "widths needs at least an input and an output width"),
            (min(self.widths) >= 1, "widths must be positive"),
            (0 < self.density <= 1, "density must be in (0, 1]"),
            (self.networks >= 1, "networks must be at least 1"),
            (0 <= self.rewire <= 1, "rewire must be in [0, 1]"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (0 <= self.zeta < 1, "zeta must be in [0, 1)"),
            (0 <= self.regrow_shared <= 1, "regrow_shared must be in [0, 1]"),
            (self.init_std >= 0 and self.regrow_std >= 0, "init_std, regrow_std must be >= 0"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


Labels = npt.NDArray[np.int64]


def digits_784(seed: int, test_fraction: float) -> tuple[FloatArray, Labels, FloatArray, Labels]:
    """scikit-learn's digits upsampled to 28x28, standardised: x_train, y_train, x_test, y_test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "generating topologies needs scikit-learn's bundled digits: "
            "pip install 'nnstd[generate]'"
        ) from exc
    from scipy.ndimage import zoom

    data = load_digits()
    images = zoom(data.images.astype(np.float64), (1, 3.5, 3.5), order=1)  # 8x8 -> 28x28
    x = images.reshape(len(images), -1) / 16.0
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


def _random_empty_positions(
    rng: np.random.Generator, shape: tuple[int, int], taken: npt.NDArray[np.int64], count: int
) -> npt.NDArray[np.int64]:
    """``count`` distinct flat positions of ``shape`` not in ``taken``, uniformly at random.

    Draws one block of positions and keeps the first ``count`` empty ones in drawing order, so
    the draws used do not depend on ``taken`` (unless a block falls short, which is rare at
    the densities used here): networks that share a stream stay in step, and ones that differ
    in a few connections get nearly the same positions.
    """
    size = shape[0] * shape[1]
    if count > size - len(taken):
        raise ValueError("not enough empty positions")
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < count:
        need = count - len(chosen)
        draw = rng.integers(0, size, size=2 * need + 64, dtype=np.int64)
        empty = ~np.isin(draw, taken) & ~np.isin(draw, chosen)
        _, first = np.unique(draw, return_index=True)
        first_time = np.zeros(len(draw), dtype=bool)
        first_time[first] = True
        chosen = np.concatenate([chosen, draw[empty & first_time][:need]])
    return chosen


# A layer's positions and the CSR indices and indptr built from them.
_CsrStructure = tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int32]]


@dataclass
class SparseLayer:
    """A sparse weight matrix in CSR form whose ``data`` is trained in place."""

    shape: tuple[int, int]
    flat: npt.NDArray[np.int64]  # sorted flat positions r * n_out + c of the connections
    values: FloatArray
    _structure: _CsrStructure | None = field(default=None, repr=False, compare=False)

    @classmethod
    def erdos_renyi(
        cls, rng: np.random.Generator, shape: tuple[int, int], density: float, std: float
    ) -> SparseLayer:
        count = max(1, int(round(density * shape[0] * shape[1])))
        flat = np.sort(_random_empty_positions(rng, shape, np.empty(0, np.int64), count))
        return cls(shape, flat, rng.normal(0.0, std, size=count))

    def rows_cols(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return np.divmod(self.flat, self.shape[1])

    def matrix(self) -> sp.csr_array:
        # ``flat`` is sorted row-major, so ``values`` already is the CSR data array: only the
        # structure is built, once per topology (training runs thousands of products on it).
        if self._structure is None or self._structure[0] is not self.flat:
            rows, cols = self.rows_cols()
            indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.shape[0]))])
            self._structure = (self.flat, cols.astype(np.int32), indptr.astype(np.int32))
        _, indices, indptr = self._structure
        return sp.csr_array((self.values, indices, indptr), shape=self.shape)

    def replace(
        self,
        rng: np.random.Generator,
        remove: npt.NDArray[np.int64],
        std: float,
        per_connection: FloatArray | None = None,
        own: tuple[np.random.Generator, float] | None = None,
    ) -> FloatArray | None:
        """Drops the connections at indices ``remove`` and adds as many at random empty
        positions with random weights. ``per_connection`` (say, momentum) follows the kept
        connections and is 0 for new ones; the rearranged array is returned. With
        ``own = (generator, fraction)``, that fraction of the new positions comes from
        ``generator`` instead of ``rng``."""
        keep = np.ones(len(self.flat), dtype=bool)
        keep[remove] = False
        private = 0 if own is None else int(round(own[1] * len(remove)))
        new = _random_empty_positions(rng, self.shape, self.flat, len(remove) - private)
        if own is not None:
            taken = np.concatenate([self.flat, new])
            new = np.concatenate([new, _random_empty_positions(own[0], self.shape, taken, private)])
        flat = np.concatenate([self.flat[keep], new])
        values = np.concatenate([self.values[keep], rng.normal(0.0, std, size=len(new))])
        order = np.argsort(flat, kind="stable")
        self.flat, self.values = flat[order], values[order]
        if per_connection is None:
            return None
        return np.concatenate([per_connection[keep], np.zeros(len(new))])[order]


@dataclass
class Mlp:
    """A sparse MLP: sparse hidden layers, a dense output layer, ReLU, softmax."""

    sparse: list[SparseLayer]
    dense: FloatArray
    biases: list[FloatArray]

    def copy(self) -> Mlp:
        layers = [SparseLayer(s.shape, s.flat.copy(), s.values.copy()) for s in self.sparse]
        return Mlp(layers, self.dense.copy(), [b.copy() for b in self.biases])

    def forward(self, x: FloatArray) -> list[FloatArray]:
        activations = [x]
        for layer, bias in zip(self.sparse, self.biases, strict=False):
            z = np.asarray(activations[-1] @ layer.matrix()) + bias
            activations.append(np.maximum(z, 0.0))
        logits = activations[-1] @ self.dense + self.biases[-1]
        activations.append(logits)
        return activations

    def is_finite(self) -> bool:
        arrays = [self.dense, *self.biases, *(s.values for s in self.sparse)]
        return all(bool(np.all(np.isfinite(a))) for a in arrays)

    def accuracy(self, x: FloatArray, y: npt.NDArray[np.int64]) -> float:
        return float((self.forward(x)[-1].argmax(axis=1) == y).mean())

    def snapshot(self) -> list[sp.csr_array]:
        """The layers as (n_in + 1, n_out) float32 matrices with the bias row last."""
        out = []
        for k, layer in enumerate(self.sparse):
            bias_row = sp.csr_array(self.biases[k][None, :])
            out.append(sp.vstack([layer.matrix(), bias_row], format="csr"))
        out.append(sp.csr_array(np.vstack([self.dense, self.biases[-1][None, :]])))
        return [m.astype(np.float32) for m in out]


def initial_network(config: SetConfig, rng: np.random.Generator) -> Mlp:
    widths = config.widths
    sparse = [
        SparseLayer.erdos_renyi(rng, (a, b), config.density, _init_std(config, a))
        for a, b in zip(widths[:-2], widths[1:-1], strict=True)
    ]
    dense = rng.normal(0.0, np.sqrt(2.0 / widths[-2]), size=(widths[-2], widths[-1]))
    biases = [np.zeros(w) for w in widths[1:]]
    return Mlp(sparse, dense, biases)


def _init_std(config: SetConfig, n_in: int) -> float:
    """``config.init_std``, or He initialisation for a sparse neuron's expected fan-in if 0."""
    if config.init_std > 0:
        return config.init_std
    return float(np.sqrt(2.0 / max(1.0, config.density * n_in)))


def rewired(net: Mlp, config: SetConfig, rng: np.random.Generator) -> Mlp:
    """A copy of ``net`` with ``config.rewire`` of each sparse layer's connections moved."""
    out = net.copy()
    for layer in out.sparse:
        count = int(round(config.rewire * len(layer.flat)))
        remove = rng.choice(len(layer.flat), size=count, replace=False)
        layer.replace(rng, remove, _init_std(config, layer.shape[0]))
    return out


class Trainer:
    """SGD with momentum and weight decay, softmax cross-entropy, and SET's topology updates."""

    def __init__(
        self,
        net: Mlp,
        config: SetConfig,
        rng: np.random.Generator,
        own: np.random.Generator | None = None,
    ) -> None:
        self.net, self.config, self.rng, self.own = net, config, rng, own
        self._reset_velocity()

    def _reset_velocity(self) -> None:
        self.v_sparse = [np.zeros_like(s.values) for s in self.net.sparse]
        self.v_dense = np.zeros_like(self.net.dense)
        self.v_bias = [np.zeros_like(b) for b in self.net.biases]

    def _step(self, param: FloatArray, grad: FloatArray, velocity: FloatArray) -> None:
        c = self.config
        velocity *= c.momentum
        velocity -= c.learning_rate * (grad + c.weight_decay * param)
        param += velocity

    def train_batch(self, x: FloatArray, y: npt.NDArray[np.int64]) -> None:
        net = self.net
        acts = net.forward(x)
        logits = acts[-1]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        delta = probs
        delta[np.arange(len(y)), y] -= 1.0
        delta /= len(y)
        grad_dense = acts[-2].T @ delta
        grad_biases = [delta.sum(axis=0)]
        back = delta @ net.dense.T
        grads_sparse: list[FloatArray] = []
        for k in range(len(net.sparse) - 1, -1, -1):
            layer = net.sparse[k]
            delta = back * (acts[k + 1] > 0)
            rows, cols = layer.rows_cols()
            grads_sparse.insert(0, np.einsum("bi,bi->i", acts[k][:, rows], delta[:, cols]))
            grad_biases.append(delta.sum(axis=0))
            if k > 0:
                back = np.asarray(layer.matrix() @ delta.T).T
        grad_biases.reverse()
        grads = [grad_dense, *grads_sparse, *grad_biases]
        norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
        scale = min(1.0, self.config.grad_clip / norm) if norm > 0 else 1.0
        self._step(net.dense, scale * grad_dense, self.v_dense)
        for layer, grad, velocity in zip(net.sparse, grads_sparse, self.v_sparse, strict=True):
            self._step(layer.values, scale * grad, velocity)
        for bias, grad, velocity in zip(net.biases, grad_biases, self.v_bias, strict=True):
            self._step(bias, scale * grad, velocity)

    def train_epoch(self, x: FloatArray, y: npt.NDArray[np.int64]) -> None:
        order = self.rng.permutation(len(x))
        for start in range(0, len(x), self.config.batch_size):
            batch = order[start : start + self.config.batch_size]
            self.train_batch(x[batch], y[batch])

    def evolve_topology(self) -> None:
        """SET: drop the ``zeta`` fraction of each sparse layer's weights closest to zero and
        regrow as many at random empty positions (new weights random, momentum reset)."""
        for k, layer in enumerate(self.net.sparse):
            count = int(round(self.config.zeta * len(layer.flat)))
            remove = np.argsort(np.abs(layer.values), kind="stable")[:count]
            std = self.config.regrow_std
            own = None if self.own is None else (self.own, 1.0 - self.config.regrow_shared)
            velocity = layer.replace(self.rng, remove, std, self.v_sparse[k], own)
            assert velocity is not None
            self.v_sparse[k] = velocity


def save_snapshot(net: Mlp, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, matrix in enumerate(net.snapshot()):
        sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(matrix))


Data = tuple[FloatArray, Labels, FloatArray, Labels]


def _train_network(job: tuple[int, Mlp, SetConfig, Data, Path]) -> list[float]:
    """Trains network ``index`` with SET, writing its snapshots; the test accuracy per epoch."""
    index, net, config, (x_train, y_train, x_test, y_test), folder = job
    save_snapshot(net, folder / "init")
    own = np.random.default_rng([config.seed, index + 1])
    if config.shared_stream:
        trainer = Trainer(net, config, np.random.default_rng([config.seed, 0]), own)
    else:
        trainer = Trainer(net, config, own)
    accuracies = []
    for epoch in range(config.epochs):
        # Training, then SET's topology update (so epoch_000 is already one update away from
        # the initial network, as in the paper). The other order (update first) drifts apart
        # faster: 0.44 instead of 0.37 at epoch 10, with a weaker rewiring gradient.
        trainer.train_epoch(x_train, y_train)
        trainer.evolve_topology()
        if not net.is_finite():
            raise RuntimeError(f"{folder.name}: training diverged at epoch {epoch}")
        accuracies.append(net.accuracy(x_test, y_test))
        if epoch in config.snapshots:
            save_snapshot(net, folder / f"epoch_{epoch:03d}")
    (folder / "testacc.txt").write_text("".join(f"{a:.4f}\n" for a in accuracies))
    return accuracies


def generate(
    out: Path,
    config: SetConfig = SetConfig(),
    *,
    log: Callable[[str], object] = lambda message: print(message, file=sys.stderr),
    processes: int = 1,
) -> dict[str, float]:
    """Generates the initial chain, trains every network with SET and writes the snapshots.

    Returns the final test accuracy of each network. The networks train independently, so
    ``processes > 1`` trains that many at once, with the same results.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cfg = SetConfig(widths=(784, 40, 10), density=0.05, networks=2, epochs=2,
    ...                 snapshots=(0, 1))
    >>> acc = generate(pathlib.Path(tempfile.mkdtemp()), cfg, log=lambda m: None)
    >>> sorted(acc)
    ['w0', 'w1']
    """
    data = digits_784(config.seed, config.test_fraction)
    if data[0].shape[1] != config.widths[0]:
        raise ValueError(
            f"the digits data has {data[0].shape[1]} inputs (28x28); the first width must be "
            f"{data[0].shape[1]}, got {config.widths[0]}"
        )
    rng = np.random.default_rng(config.seed)
    chain = [initial_network(config, rng)]
    for _ in range(config.networks - 1):
        chain.append(rewired(chain[-1], config, rng))
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(index, net, config, data, out / f"w{index}") for index, net in enumerate(chain)]
    final = {}
    with ProcessPoolExecutor(processes) if processes > 1 else nullcontext() as pool:
        results = pool.map(_train_network, jobs) if pool else map(_train_network, jobs)
        for (_, _, _, _, folder), accuracies in zip(jobs, results, strict=True):
            shown = ", ".join(f"{a:.3f}" for a in accuracies[:: max(1, len(accuracies) // 5)])
            log(f"{folder.name}: trained {config.epochs} epochs; test accuracy {shown}")
            final[folder.name] = accuracies[-1]
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return final
