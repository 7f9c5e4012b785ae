"""Building a `Spec` from a PyTorch module by tracing it (docs/inputs.md#graph-specs).

The module's ``forward`` is traced with ``torch.fx`` (layers, norms, attention and the
transformer layers of ``torch.nn`` kept whole), or, where fx cannot trace it (Python control
flow on shapes, say), exported with ``torch.export`` (its ATen graph: the layers are calls
of ``linear``, ``conv2d``, ``batch_norm``, ... on the modules' parameters, read by the same
rules), and run on ``example_inputs``, node by node, so every value has its real shape.
Each value that carries units says on which axis, as a sequence of *pieces* (units created
by one layer, or one input); pieces that must be renamed together are joined in a
union-find, which gives the groups:

- a ``Linear`` or ``Conv`` reads the pieces on its input axis and creates a new piece;
- adding or multiplying two values joins their pieces, one by one (a residual stream, a
  gated MLP); ``cat`` along the unit axis puts pieces side by side;
- activations, dropout, pooling, norms (their parameters follow the units) pass a value's
  pieces through; reductions over another axis keep them, over the unit axis drop them;
- ``split``/``chunk`` of a layer's fresh outputs along the unit axis cuts them into pieces
  of their own (a fused query-key-value projection);
- a reshape splitting the unit axis into (heads, head dim) makes head blocks; a product
  contracting the head dim joins query and key, and ties the heads of the scores to the
  value's heads;
- ``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder``
  (which fx cannot trace through its fast path) follow their documented computation.

Anything else that touches units (a slice of the unit axis, rotary embeddings, a
module without a rule, a weight used outside its module) is refused with a `TopologyError`
that names the operation: a spec can then be written by hand.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from nnstd._errors import TopologyError
from nnstd._graph import Group, Kind, Slot, Spec, matching_order
from nnstd._loaders import one_line


@dataclass(frozen=True)
class Units:
    """Where a value's units are. ``axis``: the (negative) axis of its units, ``pieces`` along
    it in order, each unit ``block`` entries wide (a flattened feature map); None when only
    heads are left (attention scores). ``head``: the (negative) axis of its heads, after a
    split into (heads, head dim)."""

    axis: int | None
    pieces: tuple[int, ...]
    block: int = 1
    head: int | None = None


@dataclass
class _Piece:
    size: int
    label: str
    kind: Kind = "hidden"
    heads: int = 1
    writers: list[Slot] = field(default_factory=list)
    readers: list[Slot] = field(default_factory=list)
    followers: list[Slot] = field(default_factory=list)
    dead: bool = False  # split into pieces of its own (a fused projection cut by split/chunk)


class _Builder:
    """The pieces, their union-finds (units renamed together; heads renamed together) and
    the slots each piece fills."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pieces: list[_Piece] = []
        self.parent: list[int] = []
        self.head_parent: list[int] = []

    def new(self, size: int, label: str, kind: Kind = "hidden", heads: int = 1) -> int:
        self.pieces.append(_Piece(size, label, kind, heads))
        self.parent.append(len(self.parent))
        self.head_parent.append(len(self.head_parent))
        return len(self.pieces) - 1

    def find(self, p: int, parent: list[int] | None = None) -> int:
        parent = self.parent if parent is None else parent
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    def refuse(self, where: str, why: str) -> TopologyError:
        return TopologyError(
            f"{self.source}: {where}: {why}; nnstd.torch.spec cannot build the groups here: "
            f"write the spec by hand (docs/inputs.md#graph-specs)"
        )

    def join(self, a: int, b: int, where: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        pa, pb = self.pieces[ra], self.pieces[rb]
        if pa.size != pb.size:
            raise self.refuse(
                where, f"joins {pa.size} units ({pa.label}) with {pb.size} ({pb.label})"
            )
        if pa.heads > 1 and pb.heads > 1 and pa.heads != pb.heads:
            raise self.refuse(where, f"joins {pa.heads} heads with {pb.heads} heads")
        keep, gone = min(ra, rb), max(ra, rb)  # the earliest piece names the group
        self.parent[gone] = keep
        pk, pg = self.pieces[keep], self.pieces[gone]
        pk.heads = max(pk.heads, pg.heads)
        pk.kind = "input" if "input" in (pk.kind, pg.kind) else pk.kind
        for attr in ("writers", "readers", "followers"):
            getattr(pk, attr).extend(getattr(pg, attr))

    def tie_heads(self, a: int, b: int) -> None:
        ra, rb = self.find(a, self.head_parent), self.find(b, self.head_parent)
        self.head_parent[max(ra, rb)] = min(ra, rb)

    def dead(self) -> set[int]:
        return {p for p, piece in enumerate(self.pieces) if piece.dead}

    def cut(self, p: int, sizes: list[int], where: str) -> list[int]:
        """Piece ``p``, just written by one layer and not joined with anything yet, as pieces
        of ``sizes`` units (a fused projection's outputs cut apart): each keeps its rows of
        the writer and of its bias."""
        piece = self.pieces[p]
        fresh = (
            self.find(p) == p
            and not any(self.find(q) == p for q in range(len(self.pieces)) if q != p)
            and len(piece.writers) == 1
            and piece.writers[0].offset == 0
            and not piece.readers
            and all(f.offset == 0 for f in piece.followers)
            and piece.heads == 1
        )
        if not fresh:
            raise self.refuse(where, "cuts units that are already joined with others")
        pieces, offset = [], 0
        for k, size in enumerate(sizes):
            q = self.new(size, f"{piece.label}.{k}")
            new = self.pieces[q]
            new.writers = [Slot(piece.writers[0].tensor, 0, offset)]
            new.followers = [Slot(f.tensor, 0, offset) for f in piece.followers]
            pieces.append(q)
            offset += size
        piece.dead = True
        return pieces

    def root(self, p: int) -> _Piece:
        return self.pieces[self.find(p)]

    def slots(self, units: Units, tensor: str, axis: int) -> list[Slot]:
        """One slot per piece of ``units``, at its offset in ``tensor``'s ``axis``."""
        out, offset = [], 0
        for p in units.pieces:
            out.append(Slot(tensor, axis, offset, units.block if axis == 1 else 1))
            offset += self.root(p).size * units.block
        return out

    def add(self, units: Units, slots: list[Slot], attr: str) -> None:
        for p, slot in zip(units.pieces, slots, strict=True):
            getattr(self.root(p), attr).append(slot)

    def spec(self, output_pieces: list[int]) -> Spec:
        for p in output_pieces:
            root = self.root(p)
            if root.kind == "hidden":
                root.kind = "output"
        roots = sorted({self.find(p) for p in range(len(self.pieces))} - self.dead())
        names: dict[int, str] = {}
        for r in roots:
            name, k = self.pieces[r].label, 2
            while name in names.values():
                name, k = f"{self.pieces[r].label}#{k}", k + 1
            names[r] = name
        head_sets: dict[int, str] = {}
        groups = []
        for r in roots:
            piece = self.pieces[r]
            head_set = None
            if piece.heads > 1:
                head_root = self.find(r, self.head_parent)
                tied = [q for q in roots if self.find(q, self.head_parent) == head_root]
                if len(tied) > 1:
                    head_set = head_sets.setdefault(head_root, names[min(tied)])
            groups.append(
                Group(
                    names[r],
                    piece.size,
                    piece.kind,
                    tuple(piece.writers),
                    tuple(piece.readers),
                    tuple(piece.followers),
                    piece.heads,
                    head_set,
                )
            )
        return Spec(tuple(matching_order(groups, self.source)), self.source)


def _pos(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


def _neg(axis: int, ndim: int) -> int:
    return axis - ndim if axis >= 0 else axis


def _prod(values: Any) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


# What passes a value's units through unchanged (by name: modules, functions and methods).
_PASS_MODULES = (
    "ReLU", "ReLU6", "GELU", "SiLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "SELU", "CELU",
    "Hardswish", "Hardsigmoid", "Hardtanh", "Mish", "Softplus", "Identity", "Dropout",
    "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Softmax", "LogSoftmax", "PReLU",
)  # fmt: skip
_POOL_MODULES = (
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
)  # fmt: skip
_PASS_NAMES = {
    "relu", "relu_", "gelu", "silu", "sigmoid", "tanh", "dropout", "softmax", "log_softmax",
    "neg", "rsqrt", "sqrt", "exp", "pow", "float", "half", "double", "bfloat16", "to",
    "type_as", "contiguous", "clone", "detach", "abs", "clamp", "leaky_relu", "elu", "mish",
    "hardswish", "softplus", "masked_fill", "relu6", "hardtanh", "erf", "square", "reciprocal",
    "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_pool1d", "avg_pool1d",
    "adaptive_avg_pool1d", "type",
}  # fmt: skip
_ELEMENTWISE = {
    "add", "mul", "sub", "truediv", "div", "iadd", "imul", "isub", "add_", "mul_", "sub_",
    "div_", "multiply", "subtract", "true_divide", "maximum", "minimum",
}  # fmt: skip
_REDUCTIONS = {"mean", "sum", "amax", "amin", "norm", "var", "std", "logsumexp", "prod"}
_RESHAPES = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze"}


def _join(module: str, param: str) -> str:
    return f"{module}.{param}" if module else param


# ATen layer calls in an exported graph (and functional calls in an fx graph) on a module's
# parameter: which argument holds the weight; the module's rule applies.
_LAYER_CALLS = {
    "linear": 1, "conv1d": 1, "conv2d": 1, "conv3d": 1, "batch_norm": 1,
    "_native_batch_norm_legit_no_training": 1, "layer_norm": 2, "rms_norm": 2,
}  # fmt: skip
_NORM_CALLS = {"batch_norm", "_native_batch_norm_legit_no_training", "layer_norm", "rms_norm"}


def _target_name(node: Any) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    packet = getattr(target, "overloadpacket", None)  # an ATen op: aten.add.Tensor -> add
    if packet is not None:
        return str(getattr(packet, "__name__", packet))
    return str(getattr(target, "__name__", target))


class _Tracer:
    """Runs the fx graph on real inputs, computing each node's value and its `Units`."""

    def __init__(self, model: Any, source: str) -> None:
        self.model = model
        self.builder = _Builder(source)
        self.units: dict[Any, Any] = {}
        self.values: dict[Any, Any] = {}
        self.params: dict[Any, str] = {}  # get_attr nodes: the tensor's name
        self.called: set[str] = set()
        self.modules = dict(model.named_modules())
        # With torch.export: placeholders that are parameters, buffers or constants (by node
        # name: the tensor's name), the user outputs' node names, and the exported module.
        self.exported_tensors: dict[str, str] = {}
        self.user_outputs: set[str] | None = None
        self.program: Any = None

    # -- helpers ------------------------------------------------------------------------------

    def refuse(self, node: Any, why: str) -> TopologyError:
        return self.builder.refuse(f"{node.name} ({_target_name(node)})", why)

    def unit_args(self, node: Any) -> list[tuple[Any, Any]]:
        """(argument node, its units) for every tensor argument that carries units."""
        out = []
        for arg in node.all_input_nodes:
            units = self.units.get(arg)
            if isinstance(units, Units):
                out.append((arg, units))
        return out

    def ndim(self, node: Any) -> int:
        return int(self.values[node].dim())

    # -- rules for layers ---------------------------------------------------------------------

    def linear(self, name: str, module: Any, units: Units | None, where: str) -> Units:
        b = self.builder
        if units is None or units.axis != -1 or units.head is not None:
            raise b.refuse(
                where, "a Linear reads a tensor whose last axis holds no units nnstd can place"
            )
        b.add(units, b.slots(units, _join(name, "weight"), 1), "readers")
        piece = b.new(int(module.weight.shape[0]), name)
        b.root(piece).writers.append(Slot(_join(name, "weight"), 0))
        if getattr(module, "bias", None) is not None:
            b.root(piece).followers.append(Slot(_join(name, "bias"), 0))
        return Units(-1, (piece,))

    def conv(self, name: str, module: Any, units: Units | None, ndim: int, where: str) -> Units:
        b = self.builder
        if module.groups != 1:
            raise b.refuse(
                where,
                f"a convolution in {module.groups} groups (grouped or depthwise) has no rule yet",
            )
        if (
            units is None
            or units.head is not None
            or units.axis is None
            or _pos(units.axis, ndim) != 1
        ):
            raise b.refuse(
                where,
                "a convolution reads a tensor whose channel axis holds no units nnstd can place",
            )
        b.add(units, b.slots(units, _join(name, "weight"), 1), "readers")
        piece = b.new(int(module.weight.shape[0]), name)
        b.root(piece).writers.append(Slot(_join(name, "weight"), 0))
        if getattr(module, "bias", None) is not None:
            b.root(piece).followers.append(Slot(_join(name, "bias"), 0))
        return Units(units.axis, (piece,))

    def norm(
        self, name: str, module: Any, units: Units | None, ndim: int, where: str
    ) -> Units | None:
        b = self.builder
        kind = type(module).__name__
        if kind.startswith("BatchNorm") or kind.startswith("InstanceNorm"):
            ok = units is not None and units.axis is not None and _pos(units.axis, ndim) == 1
        else:  # LayerNorm, RMSNorm: over the last axis only
            shape = getattr(module, "normalized_shape", ())
            ok = units is not None and units.axis == -1 and len(tuple(shape)) == 1
        if units is None or not ok or units.head is not None or units.block != 1:
            raise b.refuse(
                where, f"{kind} normalises an axis that does not hold one value per unit"
            )
        for param in ("weight", "bias", "running_mean", "running_var"):
            if getattr(module, param, None) is not None:
                b.add(units, b.slots(units, _join(name, param), 0), "followers")
        return units

    def attention(self, name: str, module: Any, units: Units | None, where: str) -> Units:
        """``nn.MultiheadAttention`` on one input (self-attention)."""
        b = self.builder
        if not module._qkv_same_embed_dim or module.bias_k is not None:
            raise b.refuse(
                where, "MultiheadAttention with kdim/vdim or add_bias_kv has no rule yet"
            )
        if units is None or units.axis != -1 or units.head is not None:
            raise b.refuse(
                where, "MultiheadAttention reads a tensor whose last axis holds no units"
            )
        d, heads = int(module.embed_dim), int(module.num_heads)
        b.add(units, b.slots(units, _join(name, "in_proj_weight"), 1), "readers")
        qk = b.new(d, _join(name, "qk"), heads=heads)
        v = b.new(d, _join(name, "v"), heads=heads)
        b.tie_heads(qk, v)
        for piece, offsets in ((qk, (0, d)), (v, (2 * d,))):
            for offset in offsets:
                b.root(piece).writers.append(Slot(_join(name, "in_proj_weight"), 0, offset))
                if module.in_proj_bias is not None:
                    b.root(piece).followers.append(Slot(_join(name, "in_proj_bias"), 0, offset))
        return self.linear(_join(name, "out_proj"), module.out_proj, Units(-1, (v,)), where)

    def encoder_layer(self, name: str, layer: Any, x: Units | None, where: str) -> Units:
        """``nn.TransformerEncoderLayer``, pre- or post-norm, as its ``forward`` computes it
        (the fast path computes the same)."""
        b = self.builder
        act = getattr(layer, "activation", None)
        if act is not None and not callable(act):
            raise b.refuse(where, "an unknown activation")

        def block_sa(u: Units | None) -> Units:
            return self.attention(_join(name, "self_attn"), layer.self_attn, u, where)

        def block_ff(u: Units | None) -> Units:
            h = self.linear(_join(name, "linear1"), layer.linear1, u, where)
            return self.linear(_join(name, "linear2"), layer.linear2, h, where)

        def add(u: Units | None, w: Units) -> Units:
            return self.elementwise([u, w], where)  # type: ignore[return-value]

        if layer.norm_first:
            x = add(x, block_sa(self.norm(_join(name, "norm1"), layer.norm1, x, 3, where)))
            x = add(x, block_ff(self.norm(_join(name, "norm2"), layer.norm2, x, 3, where)))
        else:
            x = self.norm(_join(name, "norm1"), layer.norm1, add(x, block_sa(x)), 3, where)
            x = self.norm(_join(name, "norm2"), layer.norm2, add(x, block_ff(x)), 3, where)
        assert x is not None
        return x

    # -- rules for operations -----------------------------------------------------------------

    def elementwise(self, operands: list[Units | None], where: str) -> Units | None:
        """Values combined entry by entry: their pieces are joined one by one."""
        carried = [u for u in operands if u is not None]
        if not carried:
            return None
        first = carried[0]
        for other in carried[1:]:
            if (first.axis, first.head, first.block) != (other.axis, other.head, other.block):
                raise self.builder.refuse(
                    where, "combines values whose units lie on different axes"
                )
            if len(first.pieces) != len(other.pieces) or any(
                self.builder.root(p).size != self.builder.root(q).size
                for p, q in zip(first.pieces, other.pieces, strict=True)
            ):
                raise self.builder.refuse(
                    where, "combines values whose units are concatenated differently"
                )
            for p, q in zip(first.pieces, other.pieces, strict=True):
                self.builder.join(p, q, where)
                if first.axis is None:  # scores: only their heads meet
                    self.builder.tie_heads(p, q)
        return first

    def follower_param(self, node: Any, param: Any, units: Units, ndim: int, where: str) -> None:
        """A parameter multiplied with or added to a value with units: a scalar, or one value
        per unit on the unit axis (an RMSNorm written by hand)."""
        name = self.params[param]
        value = self.values[param]
        if value.numel() == 1:
            return
        shape = tuple(value.shape)
        if units.axis is None or units.head is not None or units.block != 1:
            raise self.builder.refuse(
                where, f"{name} of shape {shape} meets units it cannot follow"
            )
        total = sum(self.builder.root(p).size for p in units.pieces)
        axis = _pos(units.axis, ndim) - (ndim - len(shape))
        if not (0 <= axis < len(shape)) or shape[axis] != total or _prod(shape) != total:
            raise self.builder.refuse(
                where, f"{name} of shape {shape} does not hold one value per unit"
            )
        if len(shape) != 1:
            raise self.builder.refuse(
                where, f"{name} of shape {shape}: only 1-D per-unit tensors follow units"
            )
        self.builder.add(units, self.builder.slots(units, name, 0), "followers")

    def reshape(self, node: Any, units: Units, where: str) -> Units | None:
        source = self.values[node.all_input_nodes[0]]
        before, after = tuple(source.shape), tuple(self.values[node].shape)
        nb, na = len(before), len(after)
        if units.axis is None:
            raise self.builder.refuse(where, "reshapes attention scores")
        a = _pos(units.axis, nb)
        if units.head is None:
            prefix, size, suffix = before[:a], before[a], before[a + 1 :]
            if (
                len(suffix) < na
                and after[na - len(suffix) - 1 :] == (size, *suffix)
                and _prod(after[: na - len(suffix) - 1]) == _prod(prefix)
            ):
                return Units(-len(suffix) - 1, units.pieces, units.block)  # the unit axis kept
            if after[-1] == size * _prod(suffix) and _prod(after[:-1]) == _prod(prefix):
                return Units(-1, units.pieces, units.block * _prod(suffix))  # flattened
            if (
                not suffix
                and na >= 2
                and after[-2] * after[-1] == size
                and after[-2] > 1
                and _prod(after[:-2]) == _prod(prefix)
                and len(units.pieces) == 1
                and units.block == 1
            ):
                heads = int(after[-2])
                piece = self.builder.root(units.pieces[0])
                if piece.heads not in (1, heads):
                    raise self.builder.refuse(
                        where, f"splits {piece.heads}-head units into {heads} heads"
                    )
                piece.heads = heads
                return Units(-1, units.pieces, 1, -2)  # (heads, head dim)
        else:
            h = _pos(units.head, nb)
            if h == a - 1 and a == nb - 1:
                heads, dim = before[h], before[a]
                if after[-1] == heads * dim and _prod(after[:-1]) == _prod(before[:h]):
                    return Units(-1, units.pieces)  # heads merged back
                if after[-2:] == (heads, dim) and _prod(after[:-2]) == _prod(before[:h]):
                    return units
        raise self.builder.refuse(where, f"a reshape from {before} to {after} moves the units")

    def move_axes(self, node: Any, units: Units, where: str) -> Units:
        name = _target_name(node)
        nd = self.ndim(node)
        args = node.args[1:]
        if name in ("transpose", "swapaxes", "swapdims"):
            i, j = (_pos(int(x), nd) for x in args[:2])
            order = list(range(nd))
            order[i], order[j] = order[j], order[i]
        elif name == "permute":
            dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            order = [_pos(int(x), nd) for x in dims]
        elif name == "t" or name == "T":
            order = list(range(nd))[::-1]
        else:
            raise self.builder.refuse(where, "moves axes in a way nnstd has no rule for")

        def moved(axis: int | None) -> int | None:
            return None if axis is None else _neg(order.index(_pos(axis, nd)), nd)

        return Units(moved(units.axis), units.pieces, units.block, moved(units.head))

    def reduce(self, node: Any, units: Units, where: str) -> Units | None:
        source = self.values[node.all_input_nodes[0]]
        nb, na = source.dim(), self.ndim(node)
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if dim is None:
            return None
        dims = {_pos(int(d), nb) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        keep = na == nb
        held = [x for x in (units.axis, units.head) if x is not None]
        if any(_pos(x, nb) in dims for x in held):
            if units.head is not None:
                raise self.builder.refuse(where, "reduces over heads or head dims")
            return None  # a function of all units together (a norm's mean): no units left

        def shifted(axis: int | None) -> int | None:
            if axis is None or keep:
                return axis
            return axis + sum(1 for d in dims if d > _pos(axis, nb))

        return Units(shifted(units.axis), units.pieces, units.block, shifted(units.head))

    def contract(self, operands: list[Any], where: str) -> Units | None:
        """``a @ b`` over the last axis of ``a`` and the second last of ``b``."""
        a: Units | None = self.units.get(operands[0])
        b: Units | None = self.units.get(operands[1])
        if a is not None and a.axis == -1 and b is not None and b.axis == -2:
            if a.head is None or b.head is None or a.head != -3 or b.head != -3:
                raise self.builder.refuse(where, "a product over units outside attention heads")
            self.builder.join(a.pieces[0], b.pieces[0], where)  # query and key, head by head
            return Units(None, a.pieces, 1, -3)
        if a is not None and a.axis is None and b is not None and b.axis == -1 and b.head == -3:
            self.builder.tie_heads(a.pieces[0], b.pieces[0])  # scores' heads with the values'
            return b
        raise self.builder.refuse(where, "a matrix product nnstd has no rule for")

    def sdpa(self, node: Any, where: str) -> Units:
        q: Units | None = self.units.get(node.args[0])
        k: Units | None = self.units.get(node.args[1])
        v: Units | None = self.units.get(node.args[2])
        for u in (q, k, v):
            if u is None or u.axis != -1 or u.head != -3:
                raise self.builder.refuse(
                    where, "attention on values not split into (heads, tokens, head dim)"
                )
        assert q is not None and k is not None and v is not None
        self.builder.join(q.pieces[0], k.pieces[0], where)
        self.builder.tie_heads(q.pieces[0], v.pieces[0])
        return v

    def cat(self, node: Any, where: str) -> Units | None:
        tensors = node.args[0]
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        found: list[Units | None] = [self.units.get(t) for t in tensors]
        nd = self.ndim(node)
        parts = [p for p in found if p is not None]
        if not parts:
            return None
        if len(parts) != len(found) or any(p.head is not None for p in parts):
            raise self.builder.refuse(where, "concatenates values with and without units")
        axes = {p.axis for p in parts}
        blocks = {p.block for p in parts}
        if len(axes) != 1 or len(blocks) != 1:
            raise self.builder.refuse(
                where, "concatenates values whose units lie on different axes"
            )
        axis = axes.pop()
        if axis is not None and _pos(axis, nd) == _pos(int(dim), nd):
            pieces = tuple(q for p in parts for q in p.pieces)
            return Units(axis, pieces, blocks.pop())
        return self.elementwise(list(parts), where)

    # -- the walk -----------------------------------------------------------------------------

    def module_rule(self, node: Any, where: str) -> Any:
        name = str(node.target)
        module = self.modules[name]
        kind = type(module).__name__
        if any(True for _ in module.parameters(recurse=False)) or kind.startswith("Transformer"):
            if name in self.called:
                raise self.builder.refuse(
                    where, f"{name or 'the model'} is called more than once (shared weights)"
                )
            self.called.add(name)
        args = [a for a in node.args if hasattr(a, "op")]
        x = self.units.get(args[0]) if args else None
        nd = self.ndim(args[0]) if args and hasattr(self.values.get(args[0]), "dim") else 0
        if kind == "Linear":
            return self.linear(name, module, x, where)
        if kind in ("Conv1d", "Conv2d", "Conv3d"):
            return self.conv(name, module, x, nd, where)
        if kind.startswith("BatchNorm") or kind in ("LayerNorm", "RMSNorm"):
            return self.norm(name, module, x, nd, where)
        if kind in _PASS_MODULES:
            return x
        if kind in _POOL_MODULES:
            if x is not None and (x.axis is None or _pos(x.axis, nd) != 1 or x.head is not None):
                raise self.builder.refuse(where, "pools over the unit axis")
            return x
        if kind == "Flatten":
            return self.reshape(node, x, where) if x is not None else None
        if kind == "MultiheadAttention":
            query = node.args[0]
            others = [
                node.args[i] if len(node.args) > i else node.kwargs.get(k)
                for i, k in ((1, "key"), (2, "value"))
            ]
            if any(o is not query for o in others):
                raise self.builder.refuse(
                    where,
                    "MultiheadAttention on different query, key and value (cross-attention) "
                    "has no rule yet",
                )
            return (self.attention(name, module, x, where), None)
        if kind == "TransformerEncoderLayer":
            return self.encoder_layer(name, module, x, where)
        if kind == "TransformerEncoder":
            for k, layer in enumerate(module.layers):
                x = self.encoder_layer(_join(name, f"layers.{k}"), layer, x, where)
            if module.norm is not None:
                x = self.norm(_join(name, "norm"), module.norm, x, 3, where)
            return x
        raise self.builder.refuse(where, f"no rule for the module {name} ({kind})")

    def function_rule(self, node: Any, where: str) -> Any:
        name = _target_name(node)
        carried = self.unit_args(node)
        if name in _LAYER_CALLS and node.op == "call_function" and carried:
            return self.layer_call(node, name, where)
        if name == "getitem" and node.op == "call_function":
            container = self.units.get(node.args[0])
            if isinstance(container, tuple):
                return container[node.args[1]]
            if carried:
                raise self.builder.refuse(where, "indexes a value with units")
            return None
        if name in ("getattr", "size", "dim") or not carried and name not in _ELEMENTWISE:
            if name == "getattr" and node.args[1] == "T" and carried:
                return self.move_axes(node, carried[0][1], where)
            return None
        nd = self.ndim(node) if hasattr(self.values.get(node), "dim") else 0
        if name in _ELEMENTWISE:
            operands = [a for a in node.args if hasattr(a, "op")]
            for a in operands:
                if a in self.params:
                    other = next((u for _, u in carried), None)
                    if other is not None:
                        self.follower_param(node, a, other, nd, where)
            return self.elementwise(
                [self.units.get(a) for a in operands if a not in self.params], where
            )
        if name in _PASS_NAMES:
            if len(carried) != 1 or carried[0][0] is not node.all_input_nodes[0]:
                raise self.builder.refuse(where, "combines values with units")
            return carried[0][1]
        if name in _RESHAPES:
            return self.reshape(node, carried[0][1], where)
        if name in ("transpose", "permute", "swapaxes", "swapdims", "t"):
            return self.move_axes(node, carried[0][1], where)
        if name in _REDUCTIONS:
            return self.reduce(node, carried[0][1], where)
        if name in ("matmul", "bmm"):
            return self.contract(list(node.args[:2]), where)
        if name == "scaled_dot_product_attention":
            return self.sdpa(node, where)
        if name == "cat":
            return self.cat(node, where)
        if name in ("split", "chunk"):
            return self.split(node, carried[0][1], where)
        raise self.builder.refuse(where, f"no rule for {name} on a value with units")

    def split(self, node: Any, units: Units, where: str) -> tuple[Units, ...]:
        """``split`` or ``chunk``: along another axis, each part keeps the units; along the unit
        axis, a layer's fresh outputs are cut into pieces of their own (``q, k, v =
        qkv(x).split(d, dim=-1)``)."""
        parts = self.values[node]
        nd = self.values[node.all_input_nodes[0]].dim()
        dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
        if units.axis is None or _pos(int(dim), nd) != _pos(units.axis, nd):
            return tuple(units for _ in parts)
        if len(units.pieces) != 1 or units.block != 1 or units.head is not None:
            raise self.builder.refuse(where, "cuts units that are not one layer's outputs")
        sizes = [int(part.shape[int(dim)]) for part in parts]
        pieces = self.builder.cut(units.pieces[0], sizes, where)
        return tuple(Units(units.axis, (p,)) for p in pieces)

    def layer_call(self, node: Any, name: str, where: str) -> Any:
        """``linear``, ``conv2d``, ``batch_norm``, ... called on a module's parameter (an ATen
        graph's layers, or a functional call): the module's rule."""
        x_node = node.args[0]
        x = self.units.get(x_node)
        nd = int(self.values[x_node].dim())
        index = _LAYER_CALLS[name]
        weight = node.args[index] if len(node.args) > index else node.kwargs.get("weight")
        found = self.owner(weight, where) if hasattr(weight, "op") else None
        if found is None and name in ("batch_norm", "_native_batch_norm_legit_no_training"):
            found = self.owner(node.args[3], where) if hasattr(node.args[3], "op") else None
        if found is None:
            if name in _NORM_CALLS and (x is None or x.axis is not None):
                return x  # a norm without parameters or statistics: the units pass through
            raise self.builder.refuse(where, f"{name} on a weight that is no module's parameter")
        module_name, module = found
        if module_name in self.called:
            raise self.builder.refuse(
                where, f"{module_name} is called more than once (shared weights)"
            )
        self.called.add(module_name)
        kind = type(module).__name__
        if name == "linear" and kind == "Linear":
            return self.linear(module_name, module, x, where)
        if name.startswith("conv") and kind in ("Conv1d", "Conv2d", "Conv3d"):
            return self.conv(module_name, module, x, nd, where)
        if name in _NORM_CALLS and (
            kind.startswith("BatchNorm") or kind in ("LayerNorm", "RMSNorm")
        ):
            units = self.norm(module_name, module, x, nd, where)
            return (units, None, None) if name.startswith("_native") else units
        raise self.builder.refuse(where, f"{name} on the parameters of {module_name} ({kind})")

    def owner(self, node: Any, where: str) -> tuple[str, Any] | None:
        """The module whose weight a layer call uses: the parameter(s) the argument is
        computed from (a pruned weight is its ``_orig`` times its ``_mask``), all of one
        module's ``weight``; None when it comes from no parameter."""
        from nnstd.torch import _split

        owners, seen, todo = set(), set(), [node]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self.params:
                module, param, _ = _split(self.params[current])
                owners.add((module, param))
            elif self.units.get(current) is None:
                todo.extend(current.all_input_nodes)
        if not owners:
            return None
        if len(owners) != 1:
            names = ", ".join(sorted(f"{m}.{p}" for m, p in owners))
            raise self.builder.refuse(where, f"a weight computed from {names}")
        ((module, param),) = owners
        if module not in self.modules or param not in ("weight", "running_mean"):
            raise self.builder.refuse(
                where, f"{module}.{param} is not the weight of a module with a rule"
            )
        return module, self.modules[module]

    def graph(self, example_inputs: tuple[Any, ...]) -> Any:
        """The fx graph of ``forward``, or where fx cannot trace it, the graph
        ``torch.export`` gives; a model that is itself a module with a rule (a
        ``TransformerEncoder``, whose fast path fx cannot trace) is one call of it."""
        import torch
        import torch.fx

        count = len(example_inputs)

        class _Leaves(torch.fx.Tracer):
            def is_leaf_module(self, m: Any, qualname: str) -> bool:
                return type(m).__module__.startswith("torch.nn") and not isinstance(
                    m, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
                )

        if _Leaves().is_leaf_module(self.model, ""):
            graph = torch.fx.Graph()
            inputs = [graph.placeholder(f"input_{k}" if count > 1 else "x") for k in range(count)]
            graph.output(graph.call_module("", tuple(inputs)))
            return graph
        try:
            return _Leaves().trace(self.model)
        except Exception as exc:
            fx_failure = one_line(exc)
        try:
            return self.exported(example_inputs)
        except Exception as exc:
            raise TopologyError(
                f"{self.builder.source}: torch.fx cannot trace its forward ({fx_failure}), "
                f"and torch.export cannot export it either ({one_line(exc)}); write its spec "
                f"by hand and pass it as spec= (docs/inputs.md#graph-specs)"
            ) from None

    def exported(self, example_inputs: tuple[Any, ...]) -> Any:
        """The ATen graph of ``torch.export`` (non-strict: ``forward`` runs as Python on the
        example's shapes, so control flow on shapes is taken as the example takes it)."""
        import torch
        from torch.export.graph_signature import InputKind, OutputKind

        with warnings.catch_warnings():  # its advice on the model's code is not the user's
            warnings.simplefilter("ignore")
            try:
                program = torch.export.export(self.model, tuple(example_inputs), strict=False)
            except TypeError as exc:  # torch before 2.2 exports strictly only
                if "strict" not in str(exc):
                    raise
                program = torch.export.export(self.model, tuple(example_inputs))
        signature = program.graph_signature
        kept = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
        for spec in signature.input_specs:
            if spec.kind in kept and spec.target is not None:
                self.exported_tensors[spec.arg.name] = spec.target
        self.user_outputs = {
            spec.arg.name for spec in signature.output_specs if spec.kind == OutputKind.USER_OUTPUT
        }
        self.program = program
        return program.graph

    def exported_tensor(self, target: str) -> Any:
        """A parameter, buffer or constant of the exported program, by its name."""
        for get in (self.model.get_parameter, self.model.get_buffer):
            try:
                return get(target)
            except AttributeError:
                continue
        return self.program.constants[target]

    def evaluate(self, node: Any) -> Any:
        """The node's value, computed from its arguments' values."""
        import torch.fx

        args = torch.fx.node.map_arg(node.args, lambda n: self.values[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: self.values[n])
        if node.op == "call_module":
            return self.modules[str(node.target)](*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        value = self.model if self.program is None else self.program.graph_module
        for part in str(node.target).split("."):  # get_attr
            value = getattr(value, part)
        return value

    def run(self, example_inputs: tuple[Any, ...]) -> Spec:
        import torch

        graph = self.graph(example_inputs)
        inputs = iter(example_inputs)
        outputs: list[int] = []
        with torch.no_grad():
            for node in graph.nodes:
                where = f"{node.name} ({_target_name(node) or type(self.model).__name__})"
                if node.op == "placeholder" and node.name in self.exported_tensors:
                    self.params[node] = self.exported_tensors[node.name]
                    self.values[node] = self.exported_tensor(self.params[node])
                    self.units[node] = None
                    continue
                if node.op == "placeholder":
                    try:
                        value = next(inputs)
                    except StopIteration:
                        raise TopologyError(
                            f"{self.builder.source}: example_inputs has no value for {node.name}"
                        ) from None
                    self.values[node] = value
                    self.units[node] = (
                        self.placeholder(node, value) if hasattr(value, "dim") else None
                    )
                    continue
                if node.op == "output":
                    outputs = [
                        p
                        for a in node.all_input_nodes
                        if isinstance(self.units.get(a), Units)
                        and (self.user_outputs is None or a.name in self.user_outputs)
                        for p in self.units[a].pieces
                    ]
                    continue
                try:
                    self.values[node] = self.evaluate(node)
                except Exception as exc:  # the model's own error, on the user's inputs
                    raise TopologyError(
                        f"{self.builder.source}: the model raised at {where} on example_inputs "
                        f"({type(exc).__name__}: {one_line(exc)}); pass inputs its forward "
                        f"takes"
                    ) from exc
                if node.op == "get_attr":
                    self.params[node] = str(node.target)
                    self.units[node] = None
                elif node.op == "call_module":
                    self.units[node] = self.module_rule(node, where)
                else:
                    self.units[node] = self.function_rule(node, where)
        if not outputs:  # no output units: the groups would be cut off at an arbitrary point
            raise TopologyError(
                f"{self.builder.source}: its forward returns no tensor computed from "
                f"example_inputs; nnstd reads the units of the model's outputs"
            )
        return self.builder.spec(outputs)

    def placeholder(self, node: Any, value: Any) -> Units | None:
        """An input's units: its channels (axis 1) when a convolution reads it first, else its
        last axis."""
        first = self.first_layer(node)
        if value.dim() == 0:
            return None
        axis = -value.dim() + 1 if first in ("Conv1d", "Conv2d", "Conv3d") else -1
        size = int(value.shape[axis])
        return Units(axis, (self.builder.new(size, node.name, "input"),))

    def first_layer(self, node: Any) -> str | None:
        seen, todo = set(), [node]
        while todo:
            current = todo.pop(0)
            for user in current.users:
                if user in seen:
                    continue
                seen.add(user)
                if user.op == "call_module":
                    kind = type(self.modules[str(user.target)]).__name__
                    if kind in ("Linear", "Conv1d", "Conv2d", "Conv3d", "MultiheadAttention",
                                "TransformerEncoderLayer", "TransformerEncoder"):  # fmt: skip
                        return kind
                if user.op == "call_function":  # an exported graph's layer calls
                    name = _target_name(user)
                    if name in ("conv1d", "conv2d", "conv3d"):
                        return "Conv" + name[4:]
                    if name == "linear":
                        return "Linear"
                todo.append(user)
        return None


def trace_spec(model: Any, example_inputs: tuple[Any, ...], source: str) -> Spec:
    """The groups of ``model`` traced on ``example_inputs`` (see the module docstring)."""
    spec = _Tracer(model, source).run(example_inputs)
    return spec
