"""Applying an NNSTD alignment to PyTorch models and state dicts.

`permute` renames the hidden units of a plain chain of ``Linear`` / ``Conv2d`` layers: each
layer's outputs (weights, biases, pruning masks, parametrizations), the per-unit modules after
it (BatchNorm parameters and running statistics, LayerNorm), and the next layer's inputs
(convolution channels, or channel-major blocks after a flatten). The permuted model computes
the same function. `align` finds the renaming with `nnstd.alignment` and applies it.

Models that are not plain chains (residual networks, attention) are refused, never renamed
into another function: their state dicts' names and weights are checked, a module's
``forward`` is traced with ``torch.fx``, and a renamed module's outputs are compared with the
model's on ``example_inputs``.

`spec` traces a module into its groups of units renamed together (residual streams,
attention heads, gated MLPs; docs/definition.md#graphs-of-permutation-groups), printable and
checked against the model's tensors; `Spec.from_dict` reads one written by hand.

Works on state dicts of ``torch.Tensor`` or of numpy arrays; modules need PyTorch
(``nnstd[torch]``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nnstd._align import alignment
from nnstd._errors import TopologyError
from nnstd._graph import GraphNetwork, Group, Slot, Spec, graph_network
from nnstd._loaders import (
    DEFAULT_LOAD_BUDGET,
    GRAPH_WAY_OUT,
    apply_mask_conventions,
    check_plain_chain,
    natural_key,
    one_line,
    state_dict_of,
    tensors_to_numpy,
)
from nnstd._network import Network, network_from_tensors
from nnstd._options import DEFAULT_SOLVER, Solver

__all__ = ["GraphNetwork", "Group", "Slot", "Spec", "align", "permute", "spec", "to_network"]

# ``P.parametrizations.weight.original`` and ``P.parametrizations.weight.0.mask`` (any buffer).
_PARAMETRIZED = re.compile(r"(.+)\.parametrizations\.([^.]+)\.(original|[0-9]+\.[^.]+)")
_PRUNED = re.compile(r"(.+)\.([^.]+?)_(orig|mask)")  # torch.nn.utils.prune
_PLAIN = re.compile(r"(.+)\.([^.]+)")
_LAYER_PARAMS = ("weight", "bias")


@dataclass
class _Module:
    """The tensors of one module of a state dict, by the parameter they belong to."""

    name: str
    tensors: dict[str, list[str]] = field(default_factory=dict)  # param -> tensor names

    def names(self, param: str | None = None) -> list[str]:
        if param is not None:
            return self.tensors.get(param, [])
        return [n for names in self.tensors.values() for n in names]


def _split(name: str) -> tuple[str, str, str]:
    """(module, parameter, role) of a tensor name; role ``"mask"`` for pruning masks."""
    for pattern in (_PARAMETRIZED, _PRUNED):
        found = pattern.fullmatch(name)
        if found:
            role = found.group(3)
            return found.group(1), found.group(2), "mask" if role.endswith("mask") else role
    found = _PLAIN.fullmatch(name)
    if found:
        return found.group(1), found.group(2), "plain"
    return "", name, "plain"


def _modules(state: Mapping[str, Any]) -> list[_Module]:
    """The modules in the order their first tensor appears."""
    modules: dict[str, _Module] = {}
    for name in state:
        module, param, _ = _split(name)
        modules.setdefault(module, _Module(module)).tensors.setdefault(param, []).append(name)
    return list(modules.values())


def _is_layer(module: _Module, state: Mapping[str, Any]) -> bool:
    return any(np.ndim(state[n]) in (2, 4) for n in module.names("weight"))


def _chain(
    modules: list[_Module], state: Mapping[str, Any], layers: Sequence[str] | None, source: str
) -> list[int]:
    """Indices (into ``modules``) of the chain's layers, in order."""
    if layers is None:
        chosen = [i for i, m in enumerate(modules) if _is_layer(m, state)]
        if chosen:
            check_plain_chain(
                {name: tuple(getattr(value, "shape", ())) for name, value in state.items()},
                {n for i in chosen for n in modules[i].names("weight")},
                source,
            )
    else:
        chosen = []
        for pattern in layers:
            regex = re.compile(
                re.escape(pattern) if pattern in {m.name for m in modules} else pattern
            )
            hits = sorted(
                (i for i, m in enumerate(modules) if regex.fullmatch(m.name)),
                key=lambda i: natural_key(modules[i].name),
            )
            if not hits:
                raise TopologyError(f"{source}: no module matches {pattern!r}")
            chosen += [i for i in hits if i not in chosen]
        for i in chosen:
            if not _is_layer(modules[i], state):
                raise TopologyError(f"{source}: {modules[i].name} has no 2-D or 4-D weight")
        if chosen != sorted(chosen):
            raise TopologyError(f"{source}: the layers are not in the state dict's order")
    if not chosen:
        raise TopologyError(f"{source}: no 2-D or 4-D weights found")
    return chosen


def _width(module: _Module, state: Mapping[str, Any]) -> int:
    return int(
        np.shape(state[next(n for n in module.names("weight") if np.ndim(state[n]) in (2, 4))])[0]
    )


def _take(tensor: Any, index: npt.NDArray[np.int64], dim: int) -> Any:
    """``tensor`` reordered along ``dim`` (a torch tensor stays one, on its device)."""
    if hasattr(tensor, "index_select"):
        import torch

        index = np.ascontiguousarray(index)  # torch takes no negative strides
        return tensor.index_select(dim, torch.as_tensor(index, device=tensor.device))
    return np.take(np.asarray(tensor), index, axis=dim)


def _block_index(order: npt.NDArray[np.int64], block: int) -> npt.NDArray[np.int64]:
    return (order[:, None] * block + np.arange(block, dtype=np.int64)[None, :]).ravel()


def _permute_outputs(
    out: dict[str, Any], module: _Module, order: npt.NDArray[np.int64], source: str
) -> None:
    for param in _LAYER_PARAMS:
        for name in module.names(param):
            if np.ndim(out[name]) == 0 or np.shape(out[name])[0] != len(order):
                raise TopologyError(
                    f"{source}: {name} has shape {tuple(np.shape(out[name]))}, expected "
                    f"{len(order)} units first"
                )
            out[name] = _take(out[name], order, 0)


def _permute_between(
    out: dict[str, Any], module: _Module, order: npt.NDArray[np.int64], layer: str, source: str
) -> None:
    """A module between two layers (BatchNorm, LayerNorm): one value per unit, or a count."""
    for name in module.names():
        shape = tuple(np.shape(out[name]))
        if shape == ():
            continue  # num_batches_tracked
        if len(shape) != 1 or shape[0] != len(order):
            raise TopologyError(
                f"{source}: cannot infer how {module.name or name} (tensor {name}, shape "
                f"{shape}) follows {layer}'s {len(order)} units: permute follows a plain chain "
                f"of layers with per-unit modules (BatchNorm) between them, not residual "
                f"connections or branches; name the chain with layers=[...] (it must end at "
                f"{layer} or skip nothing that reads it)"
            )
        out[name] = _take(out[name], order, 0)


def _permute_inputs(
    out: dict[str, Any], module: _Module, order: npt.NDArray[np.int64], layer: str, source: str
) -> None:
    """The next layer's inputs: conv channels, linear inputs, or flatten blocks."""
    for name in module.names("weight"):
        shape = tuple(np.shape(out[name]))
        n_in = shape[1] if len(shape) >= 2 else -1
        if n_in == len(order):
            out[name] = _take(out[name], order, 1)
        elif len(shape) == 2 and n_in > 0 and n_in % len(order) == 0:  # after a flatten
            out[name] = _take(out[name], _block_index(order, n_in // len(order)), 1)
        else:
            raise TopologyError(
                f"{source}: {name} has shape {shape}, which does not take {layer}'s "
                f"{len(order)} units as inputs (a grouped convolution, a residual connection "
                f"or a branch?); name the chain with layers=[...]"
            )


def _check_orders(
    orders: Sequence[npt.ArrayLike], widths: list[int], names: list[str], source: str
) -> list[npt.NDArray[np.int64]]:
    if len(orders) != len(widths) - 1:
        raise TopologyError(
            f"{source}: {len(orders)} orders for {len(widths) - 1} hidden layers "
            f"({', '.join(names[:-1])})"
        )
    checked = []
    for order, width, name in zip(orders, widths, names, strict=False):
        array = np.asarray(order, dtype=np.int64)
        if array.shape != (width,) or not np.array_equal(np.sort(array), np.arange(width)):
            raise TopologyError(
                f"{source}: the order for {name} is not a permutation of its {width} units"
            )
        checked.append(array)
    return checked


def _is_metadata(node: Any) -> bool:
    """A node computing a tensor's size or shape (``x.view(x.size(0), -1)``), not its values."""
    if node.op == "call_method" and node.target in ("size", "dim"):
        return True
    if node.op == "call_function" and node.target in (getattr, operator.getitem):
        return bool(node.all_input_nodes) and (
            node.target is getattr or _is_metadata(node.all_input_nodes[0])
        )
    return False


def _only_user(node: Any, layer: str, source: str) -> Any:
    users = [u for u in node.users if not _is_metadata(u)]
    if len(users) != 1:
        raise TopologyError(
            f"{source}: the units of {layer} are read by {len(users)} operations after "
            f"{node.name} (a residual connection or a branch): permute follows plain chains "
            f"only, where every unit of a layer feeds the next layer alone"
        )
    return users[0]


def _check_traced_chain(model: Any, names: list[str], source: str) -> str | None:
    """Through ``torch.fx``: each hidden layer's output reaches the next layer alone, through
    operations of one tensor (activations, BatchNorm, flatten), never added to another
    tensor. Returns why tracing failed (then nothing is checked here), or None."""
    try:
        import torch.fx

        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # dynamic control flow and the like: fx cannot follow it
        return one_line(exc)
    calls: dict[str, list[Any]] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls.setdefault(str(node.target), []).append(node)
    for k, layer in enumerate(names[:-1]):
        if len(calls.get(layer, [])) != 1 or len(calls.get(names[k + 1], [])) != 1:
            raise TopologyError(
                f"{source}: {layer} or {names[k + 1]} is not called exactly once in forward; "
                f"permute follows plain chains only"
            )
        node, target = calls[layer][0], calls[names[k + 1]][0]
        while node is not target:
            node = _only_user(node, layer, source)
            others = [n for n in node.all_input_nodes if not _is_metadata(n) and n.op != "get_attr"]
            if node.op == "output" or len(others) > 1:
                raise TopologyError(
                    f"{source}: the units of {layer} are combined with another tensor in "
                    f"{node.name} before {names[k + 1]} (a residual connection?): permute "
                    f"follows plain chains only"
                )
    return None


# How far the renamed model's outputs may be from the model's (relative, in the 2-norm): a
# renaming only reorders sums, so they agree to rounding.
_TOLERANCES = {"torch.float64": 1e-5, "torch.float32": 1e-4}
_LOW_PRECISION_TOLERANCE = 1e-2  # float16, bfloat16


def _as_inputs(example_inputs: Any) -> tuple[Any, ...]:
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    return (example_inputs,)


def _guessed_inputs(model: Any) -> tuple[Any, ...] | None:
    """A random batch for a model whose first layer is a ``Linear`` (its input width is then
    known); None for any other first layer (a convolution's image size is not)."""
    import torch

    layer_types = (
        torch.nn.Linear,
        torch.nn.modules.conv._ConvNd,
        torch.nn.MultiheadAttention,
        torch.nn.Embedding,
        torch.nn.RNNBase,
    )
    first = next((m for m in model.modules() if isinstance(m, layer_types)), None)
    if not isinstance(first, torch.nn.Linear):
        return None
    like = next(iter(first.parameters()), None)
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(4, first.in_features, generator=generator, dtype=dtype)
    return (batch.to(like.device) if like is not None else batch,)


def _tensors_in(output: Any) -> list[Any]:
    if hasattr(output, "detach"):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors_in(item)]
    return []


def _outputs(model: Any, inputs: tuple[Any, ...], source: str, guessed: bool) -> list[Any] | None:
    """The model's output tensors on ``inputs``, in eval mode (dropout off, BatchNorm
    statistics neither used from the batch nor updated) without gradients; the modules'
    modes are restored. None when a guessed input does not fit the model."""
    import torch

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            output = model(*inputs)
    except Exception as exc:
        if guessed:
            return None
        raise TopologyError(
            f"{source}: running the model on example_inputs failed ({one_line(exc)})"
        ) from None
    finally:
        for module, mode in modes:
            module.training = mode
    return [t.detach().clone() for t in _tensors_in(output)]


def _relative_error(before: list[Any], after: list[Any]) -> tuple[float, float]:
    """The largest relative difference between two lists of outputs, and the tolerance for
    their precision."""
    import torch

    error, tolerance = 0.0, _TOLERANCES["torch.float64"]
    for old, new in zip(before, after, strict=True):
        if not (old.is_floating_point() or old.is_complex()):
            error = max(error, 0.0 if torch.equal(old, new) else math.inf)
            continue
        tolerance = max(tolerance, _TOLERANCES.get(str(old.dtype), _LOW_PRECISION_TOLERANCE))
        old, new = (
            old.to(torch.complex128 if old.is_complex() else torch.float64),
            new.to(torch.complex128 if old.is_complex() else torch.float64),
        )
        scale = float(torch.linalg.vector_norm(old))
        diff = float(torch.linalg.vector_norm(new - old))
        relative = diff / scale if scale > 0 else diff
        error = max(error, relative if math.isfinite(relative) else math.inf)
    return error, tolerance


def _permute_module(
    model: Any,
    orders: Sequence[npt.ArrayLike],
    layers: Sequence[str] | None,
    example_inputs: Any,
) -> Any:
    """`permute` on a module: the chain checked through torch.fx, the renamed model's outputs
    checked against the model's on ``example_inputs`` (or a random input when the first layer
    is a Linear); a renaming that changes them is undone and refused."""
    source = type(model).__name__
    state = model.state_dict()
    modules = _modules(state)
    names = [modules[i].name for i in _chain(modules, state, layers, source)]
    untraced = _check_traced_chain(model, names, source)
    new_state = permute_state(state, orders, layers=layers, source=source)
    guessed = example_inputs is None
    inputs = _guessed_inputs(model) if guessed else _as_inputs(example_inputs)
    before = None if inputs is None else _outputs(model, inputs, source, guessed)
    if not before or inputs is None:
        if untraced is not None:
            raise TopologyError(
                f"{source}: torch.fx cannot trace its forward ({untraced}), so permute cannot "
                f"see whether {', '.join(names)} form a plain chain, and has no input to check "
                f"the renamed model on: pass example_inputs=(...)"
            )
        model.load_state_dict(new_state)  # a chain, as traced
        return model
    saved = {name: value.detach().clone() for name, value in state.items()}
    model.load_state_dict(new_state)
    error, tolerance = _relative_error(before, _outputs(model, inputs, source, False) or [])
    if not error <= tolerance:
        model.load_state_dict(saved)
        on = "a random input" if guessed else "example_inputs"
        raise TopologyError(
            f"{source}: renaming the units of {', '.join(names[:-1])} changes the model's "
            f"outputs on {on} (relative error {error:.2g} > {tolerance:g}): they are not a "
            f"plain chain permute can follow (a residual connection, attention, another branch "
            f"or a per-unit tensor outside the chain's modules reads them); the model is left "
            f"as it was. {GRAPH_WAY_OUT}"
        )
    return model


def permute_state(
    state: Mapping[str, Any],
    orders: Sequence[npt.ArrayLike],
    *,
    layers: Sequence[str] | None = None,
    source: str = "state dict",
) -> dict[str, Any]:
    """A new state dict with the hidden units of the chain renamed (see `permute`)."""
    modules = _modules(state)
    chain = _chain(modules, state, layers, source)
    names = [modules[i].name for i in chain]
    checked = _check_orders(orders, [_width(modules[i], state) for i in chain], names, source)
    out = dict(state)
    for k, order in enumerate(checked):
        here, after = chain[k], chain[k + 1]
        _permute_outputs(out, modules[here], order, source)
        for between in modules[here + 1 : after]:
            _permute_between(out, between, order, names[k], source)
        _permute_inputs(out, modules[after], order, names[k], source)
    return out


def permute(
    model: Any,
    orders: Sequence[npt.ArrayLike],
    *,
    layers: Sequence[str] | None = None,
    example_inputs: Any = None,
) -> Any:
    """Rename the hidden units of a PyTorch model or state dict.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` (changed in place through ``load_state_dict``, and returned) or a
        state dict of tensors or numpy arrays (a new dict is returned; tensors not renamed are
        shared with the input).
    orders
        One permutation per hidden layer of the chain (every layer but the last):
        ``order[j]`` is the unit that goes to position ``j``, as `nnstd.alignment` returns.
    layers
        The chain's modules (exact names or regular expressions matched in full), in order:
        a sub-chain you know to be a plain chain. Default: every module with a 2-D or 4-D
        ``weight``, in the state dict's order, refused where names or weights show a graph
        (a downsample or shortcut branch, a ResNet block, attention, a gated MLP, a weight
        the chain would leave unread).
    example_inputs
        For a module: an input tensor, or a tuple of them (``model(*example_inputs)``), on
        which the renamed model's outputs are checked against the model's (relative error at
        most 1e-5 in float64, 1e-4 in float32, in eval mode). Default: a random batch when the
        model's first layer is a ``Linear``; otherwise no output check, which is refused when
        ``torch.fx`` cannot trace the model either.

    Returns
    -------
    The module, or the new state dict.

    Raises
    ------
    TopologyError
        If an order is not a permutation of its layer's units, or the chain cannot be
        inferred: names or weights show a graph, a module between two layers holds something
        other than one value per unit (a residual connection, a branch), or a layer does not
        take the previous one's units as inputs. The message names the module. For a module,
        ``torch.fx`` traces ``forward`` to find skip connections a state dict cannot show, and
        a renaming that changes the outputs on ``example_inputs`` is undone and refused; a
        module fx cannot trace, with no input to check it on, is refused.

    Notes
    -----
    Renamed per unit: ``weight`` and ``bias`` along their first axis, with ``*_orig`` and
    ``*_mask`` (``torch.nn.utils.prune``) and ``parametrizations.weight.original`` /
    ``parametrizations.weight.<i>.<buffer>`` (``torch.nn.utils.parametrize``); the 1-D
    tensors of modules between two layers (BatchNorm ``weight``, ``bias``,
    ``running_mean``, ``running_var``); the next layer's input axis, in blocks of ``H * W``
    for a linear layer after a flattened convolution. The output layer's units keep their
    order.

    Examples
    --------
    >>> import numpy as np, nnstd.torch
    >>> state = {"fc1.weight": np.array([[1., 0.], [0., 2.], [3., 3.]]),
    ...          "fc1.bias": np.array([0., 1., 2.]), "fc2.weight": np.array([[4., 5., 6.]])}
    >>> new = nnstd.torch.permute(state, [[2, 0, 1]])
    >>> new["fc1.bias"], new["fc2.weight"]
    (array([2., 0., 1.]), array([[6., 4., 5.]]))
    """
    if hasattr(model, "load_state_dict") and hasattr(model, "state_dict"):
        return _permute_module(model, orders, layers, example_inputs)
    if example_inputs is not None:
        raise ValueError("example_inputs needs a module (a state dict cannot be run)")
    return permute_state(state_dict_of(model, "state dict"), orders, layers=layers)


def _masks_or_weights(
    state: Mapping[str, Any], layers: Sequence[str] | None, source: str
) -> list[str]:
    """For each layer of the chain, its pruning mask if it has one, else its weight."""
    modules = _modules(state)
    picked = []
    for i in _chain(modules, state, layers, source):
        names = [n for n in modules[i].names("weight") if np.ndim(state[n]) in (2, 4)]
        masks = [n for n in names if _split(n)[2] == "mask"]
        picked.append((masks or names)[0])
    return picked


def _chain_modules(traced: Spec) -> list[str] | None:
    """The modules of a spec that is a plain chain (one input group, then groups written by
    one ``weight`` each, each read by the next writer alone), in order; None for a graph."""
    inputs = [g for g in traced.groups if g.kind == "input"]
    if len(inputs) != 1 or inputs[0].writers or traced.groups[0] is not inputs[0]:
        return None
    names = []
    for previous, group in zip(traced.groups, traced.groups[1:], strict=False):
        if len(group.writers) != 1 or group.heads != 1 or len(previous.readers) != 1:
            return None
        writer, reader = group.writers[0], previous.readers[0]
        if writer.tensor != reader.tensor or writer.offset or reader.offset:
            return None
        module, _, param = writer.tensor.rpartition(".")
        if param != "weight" or not module:
            return None
        names.append(module)
    return names if traced.groups[-1].kind == "output" and not traced.groups[-1].readers else None


def _writer_weights(state: Mapping[str, Any], traced: Spec, source: str) -> dict[str, Any]:
    """Each writer's tensor as numpy, by its spec name: the pruning mask where there is one."""
    picked: dict[str, str] = {}
    for name in state:
        module, param, role = _split(name)
        logical = f"{module}.{param}" if module else param
        if role == "mask" or logical not in picked:
            picked[logical] = name
    wanted = {s.tensor for g in traced.groups for s in g.writers}
    tensors = tensors_to_numpy({n: state[picked[n]] for n in wanted}, source, DEFAULT_LOAD_BUDGET)
    return tensors


def to_network(
    model: Any,
    *,
    layers: Sequence[str] | None = None,
    name: str | None = None,
    example_inputs: Any = None,
    outputs: str = "free",
    spec: Spec | Mapping[str, Any] | None = None,
) -> Network:
    """The topology of a model: masks where the model has them.

    Without ``example_inputs``, the chain `permute` renames. With a module and
    ``example_inputs``, the groups `spec` traces: a plain chain is read as one (the same
    `Network` as without), any other model as a `GraphNetwork` that `nnstd.distance` and
    `nnstd.pairwise` compare group by group (docs/definition.md#graphs-of-permutation-groups).

    Parameters
    ----------
    model
        A ``torch.nn.Module`` or a state dict (tensors or numpy arrays).
    layers
        As in `permute` (not with ``example_inputs``). By default a model whose names or
        weights show a graph (residual connections, attention) is refused, and a module's
        ``forward`` is traced with ``torch.fx`` (when it can be) to find skip connections
        between layers of equal widths.
    name
        The network's name (default: the model's type).
    example_inputs
        For a module: inputs to trace it on (as in `spec`), which reads residual networks
        and transformers as graphs.
    outputs
        ``"free"`` (default: output units are matched like hidden ones, as the paper does) or
        ``"fixed"`` (each output unit is compared with the same unit of the other network;
        always a graph).
    spec
        The groups, instead of tracing: a `Spec` (``nnstd.torch.spec(module, x)`` once, then
        any number of state dicts or checkpoints of that architecture) or a mapping in the
        format of `Spec.from_dict`. Checked against the tensors; works on state dicts.

    Returns
    -------
    Network
        A `GraphNetwork` for a graph; ``network.groups`` names the groups whose distances
        ``nnstd.distance(...).layers`` holds. Graphs take every solver, the default
        ``"canonical"`` included (docs/definition.md#graph-canonical-mode).

    Examples
    --------
    >>> import numpy as np, nnstd.torch
    >>> state = {"fc.parametrizations.weight.original": np.ones((2, 3)),
    ...          "fc.parametrizations.weight.0.mask": np.eye(2, 3)}
    >>> nnstd.torch.to_network(state).connections
    [2]
    >>> import torch
    >>> class Block(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.up, self.down = torch.nn.Linear(4, 8), torch.nn.Linear(8, 4)
    ...     def forward(self, x):
    ...         return x + self.down(torch.relu(self.up(x)))
    >>> net = nnstd.torch.to_network(Block(), example_inputs=torch.zeros(1, 4))
    >>> net.groups
    ('x', 'up')
    >>> nnstd.distance(net, net, solver="auto").layers
    array([0., 0.])
    """
    if outputs not in ("free", "fixed"):
        raise ValueError(f"outputs must be 'free' or 'fixed', got {outputs!r}")
    source = name or type(model).__name__
    is_module = hasattr(model, "state_dict") and hasattr(model, "forward")
    if spec is not None:
        if example_inputs is not None or layers is not None:
            raise ValueError("spec= gives the groups: pass neither example_inputs= nor layers=")
        given = spec if isinstance(spec, Spec) else Spec.from_dict(spec, source)
        state = state_dict_of(model, source)
        given.check(_tensor_shapes(state, source))
        chain = _chain_modules(given)
        if chain is not None and outputs == "free":
            return to_network(model, layers=chain, name=source)
        return graph_network(
            given,
            _writer_weights(state, given, source),
            name=source,
            fixed_outputs=outputs == "fixed",
        )
    if example_inputs is not None or outputs == "fixed":
        if not is_module or example_inputs is None:
            raise ValueError(
                "a graph needs a module and example_inputs, or spec= (a state dict holds no graph)"
            )
        if layers is not None:
            raise ValueError("layers= names a chain; example_inputs= traces the whole model")
        traced = _traced_spec(model, example_inputs)
        chain = _chain_modules(traced)
        if chain is not None and outputs == "free":
            return to_network(model, layers=chain, name=source)
        return graph_network(
            traced,
            _writer_weights(model.state_dict(), traced, source),
            name=source,
            fixed_outputs=outputs == "fixed",
        )
    state = state_dict_of(model, source)
    try:
        if layers is None and is_module:
            modules = _modules(state)  # a skip between layers of equal widths, if fx sees it
            _check_traced_chain(
                model, [modules[i].name for i in _chain(modules, state, None, source)], source
            )
        picked = _masks_or_weights(state, layers, source)
    except TopologyError as exc:
        if not is_module:
            raise
        raise TopologyError(f"{exc}; or pass example_inputs=... to read it as a graph") from None
    tensors = tensors_to_numpy({n: state[n] for n in picked}, source, DEFAULT_LOAD_BUDGET)
    tensors = apply_mask_conventions(tensors, source)  # one tensor per layer, in order
    return network_from_tensors(tensors, layers=list(tensors), orientation="out_in", name=source)


def _graph_orders(net_a: GraphNetwork, net_b: GraphNetwork, solver: Solver) -> dict[str, Any]:
    """For each hidden group of ``net_b``: the order that renames its units after their
    partners in ``net_a`` (``order[i]`` = B's unit that takes A's unit ``i``'s place)."""
    from nnstd._api import distance

    found = distance(net_a, net_b, solver=solver)
    orders = {}
    for name, matching in zip(net_a.groups, found.matchings, strict=True):
        group = net_b.spec[name]
        if group.kind != "hidden":
            continue
        if len(matching) != group.size or (matching < 0).any():
            raise TopologyError(
                f"{net_b.name}: group {name} has {group.size} units against "
                f"{len(matching)} in the reference: align renames groups of equal sizes"
            )
        orders[name] = np.asarray(matching, dtype=np.int64)
    return orders


def _permute_graph_state(
    state: Mapping[str, Any], traced: Spec, orders: Mapping[str, Any]
) -> dict[str, Any]:
    """A new state dict with each group of ``orders`` renamed in every slot of it: all the
    tensors a slot's name stands for (a weight, its ``_orig`` and ``_mask``, its
    parametrization's original and buffers)."""
    by_logical: dict[str, list[str]] = {}
    for name in state:
        module, param, _ = _split(name)
        by_logical.setdefault(f"{module}.{param}" if module else param, []).append(name)
    out = dict(state)
    for group in traced.groups:
        if group.name not in orders:
            continue
        order = orders[group.name]
        for slot in (*group.writers, *group.readers, *group.followers):
            span = _block_index(order, slot.block) + slot.offset
            for name in by_logical.get(slot.tensor, []):
                full = np.arange(np.shape(out[name])[slot.axis], dtype=np.int64)
                full[slot.offset : slot.offset + len(span)] = span
                out[name] = _take(out[name], full, slot.axis)
    return out


def _refresh_pruned(model: Any) -> None:
    """Recomputes the masked weights of ``torch.nn.utils.prune`` from their ``_orig`` and
    ``_mask`` tensors. Their forward hook does so only when the module itself is called, and
    ``TransformerEncoderLayer``'s fast path reads its attention's weights without calling it."""
    import torch
    import torch.nn.utils.prune as prune

    with torch.no_grad():
        for module in model.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    setattr(module, hook._tensor_name, hook.apply_mask(module))  # type: ignore[no-untyped-call]


def _align_graph(reference: Any, model: Any, solver: Solver | None, example_inputs: Any) -> Any:
    """`align` on graphs: every hidden group renamed, outputs kept, checked on the inputs."""
    source = type(model).__name__
    net_a = to_network(reference, example_inputs=example_inputs, outputs="fixed")
    net_b = to_network(model, example_inputs=example_inputs, outputs="fixed")
    assert isinstance(net_a, GraphNetwork) and isinstance(net_b, GraphNetwork)
    orders = _graph_orders(net_a, net_b, solver or DEFAULT_SOLVER)
    inputs = _as_inputs(example_inputs)
    _refresh_pruned(model)
    before = _outputs(model, inputs, source, False) or []
    state = model.state_dict()
    saved = {name: value.detach().clone() for name, value in state.items()}
    model.load_state_dict(_permute_graph_state(state, net_b.spec, orders))
    _refresh_pruned(model)
    error, tolerance = _relative_error(before, _outputs(model, inputs, source, False) or [])
    if not error <= tolerance:
        model.load_state_dict(saved)
        _refresh_pruned(model)
        raise TopologyError(
            f"{source}: renaming its groups changes the model's outputs on example_inputs "
            f"(relative error {error:.2g} > {tolerance:g}): the spec misses a tensor that "
            f"reads or follows some group; the model is left as it was"
        )
    return model


def align(
    reference: Any,
    model: Any,
    *,
    solver: Solver | None = None,
    layers: Sequence[str] | None = None,
    example_inputs: Any = None,
) -> Any:
    """``model`` with its hidden units renamed after their partners in ``reference``.

    The topologies (pruning masks where present, else non-zero weights) are matched with
    `nnstd.alignment` and the renaming is applied with `permute`: the result computes the
    same function as ``model``, and where the two topologies agree its masks coincide with
    the reference's.

    Two modules with ``example_inputs`` that are not plain chains (residual networks,
    transformers) are aligned as graphs (docs/definition.md#graphs-of-permutation-groups):
    every hidden group of ``model`` (residual streams, attention heads block-wise, MLP hidden
    units, with their BatchNorm and LayerNorm parameters and statistics) is renamed after its
    partners in ``reference`` by `nnstd.distance` on the graphs with fixed outputs, and the
    renamed model's outputs are checked against the model's on ``example_inputs``.

    Parameters
    ----------
    reference, model
        ``torch.nn.Module`` objects or state dicts with the same chain of layers (modules of
        the same architecture for graphs).
    solver
        As in `nnstd.distance` (default ``"canonical"``, for chains and graphs alike).
    layers
        As in `permute`, for both.
    example_inputs
        As in `permute`: inputs on which the renamed ``model`` is checked to compute what it
        computed before; for two modules, also what their groups are traced on.

    Returns
    -------
    ``model`` (a module, changed in place) or a new state dict.

    Examples
    --------
    >>> import numpy as np, nnstd.torch
    >>> a = {"fc1.weight": np.eye(3), "fc2.weight": np.ones((1, 3))}
    >>> b = {"fc1.weight": np.eye(3)[[1, 2, 0]], "fc2.weight": np.ones((1, 3))}
    >>> nnstd.torch.align(a, b)["fc1.weight"]
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    modules = all(hasattr(m, "state_dict") and hasattr(m, "forward") for m in (reference, model))
    if example_inputs is not None and layers is None and modules:
        try:
            traced: Spec | None = spec(model, example_inputs)
        except TopologyError:
            traced = None  # not traceable as a graph: the chain's checks below decide
        if traced is not None and _chain_modules(traced) is None:
            return _align_graph(reference, model, solver, example_inputs)
    net_a = to_network(reference, layers=layers, name="reference")
    net_b = to_network(model, layers=layers, name="model")
    orders = alignment(net_a, net_b, solver=solver or DEFAULT_SOLVER)
    return permute(model, orders, layers=layers, example_inputs=example_inputs)


def _tensor_shapes(state: Mapping[str, Any], source: str) -> dict[str, tuple[int, ...]]:
    """Every tensor of a state dict by the name a spec gives it (``conv1.weight`` also when
    the state dict holds ``conv1.weight_orig`` and ``conv1.weight_mask``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    first: dict[str, str] = {}
    for name, value in state.items():
        if not hasattr(value, "shape"):  # numbers, strings, lists: not tensors of the model
            continue
        module, param, role = _split(name)
        if role not in ("plain", "orig", "original", "mask"):
            continue  # a parametrization's own state (spectral_norm's vectors), not the tensor
        logical = f"{module}.{param}" if module else param
        shape = tuple(int(n) for n in value.shape)
        if shapes.setdefault(logical, shape) != shape:
            raise TopologyError(
                f"{source}: {name} has shape {shape} and {first[logical]} has shape "
                f"{shapes[logical]}: a pruning mask and its weight have one shape"
            )
        first.setdefault(logical, name)
    return shapes


def spec(model: Any, example_inputs: Any) -> Spec:
    """The groups of units a module renames together, traced from its ``forward``.

    ``forward`` is traced with ``torch.fx`` (where fx cannot trace it, Python control flow on
    an input's shape say, exported with ``torch.export`` instead, whose ATen graph is read by
    the same rules) and run once on ``example_inputs`` (in eval mode,
    without gradients; the modules' modes are restored). Units joined by an addition (a
    residual stream), a product (a gated MLP; query and key within a head), a norm's
    parameters, or a concatenation are put in one group; attention heads make blocks. Every
    weight of the model must be some group's writer, and the spec is checked against the
    model's tensors. See docs/definition.md#graphs-of-permutation-groups for what a group
    is, docs/inputs.md#graph-specs for the rules and for writing a spec by hand
    (`Spec.from_dict`).

    Parameters
    ----------
    model
        A ``torch.nn.Module``.
    example_inputs
        An input tensor, or a tuple of them (``model(*example_inputs)``).

    Returns
    -------
    Spec
        The groups in matching order; ``print(spec)`` lists each with its writers, readers
        and followers.

    Raises
    ------
    TopologyError
        Where neither fx nor torch.export can trace ``forward`` (naming both failures), or
        an operation moves units in a way no rule
        covers (a slice or chunk of the unit axis, rotary embeddings, grouped convolutions,
        a module without a rule, a layer called twice): the message names the operation.

    Examples
    --------
    >>> import torch, nnstd.torch
    >>> class Block(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.up, self.down = torch.nn.Linear(4, 8), torch.nn.Linear(8, 4)
    ...     def forward(self, x):
    ...         return x + self.down(torch.relu(self.up(x)))
    >>> print(nnstd.torch.spec(Block(), torch.zeros(2, 4)))
    Block: 2 groups, in matching order
    0. x: input, 4 units
        written by: down.weight[0:4]
        read by: up.weight[:, 0:4]
        followers: down.bias[0:4]
    1. up: hidden, 8 units
        written by: up.weight[0:8]
        read by: down.weight[:, 0:8]
        followers: up.bias[0:8]
    """
    return _traced_spec(model, example_inputs)


def _traced_spec(model: Any, example_inputs: Any) -> Spec:
    """`spec` (a name `to_network`'s ``spec=`` argument does not hide)."""
    from nnstd._trace import trace_spec

    source = type(model).__name__
    if not (hasattr(model, "forward") and hasattr(model, "state_dict")):
        raise TypeError(f"spec needs a torch.nn.Module, got {type(model).__name__}")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        traced = trace_spec(model, _as_inputs(example_inputs), source)
    finally:
        for module, mode in modes:
            module.training = mode
    traced.check(_tensor_shapes(model.state_dict(), source))
    return traced
