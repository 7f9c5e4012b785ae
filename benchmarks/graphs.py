"""NNSTD on graphs: `nnstd.torch.to_network` and `nnstd.distance` on the models people prune.

    python benchmarks/graphs.py [--models resnet50,transformer] [--threads 1,0]
                                [--solvers auto,canonical] [--image 224]

Two 90%-sparse resnet50-layout networks (torchvision's ``resnet50`` when torchvision is
installed, else the same layout built here: bottleneck blocks 3-4-6-3, widths 64-2048, a
downsample in each stage's first block, 1000 classes; traced on one ``--image`` x ``--image``
RGB image) and two 12-layer d=768 transformer stacks (``nn.TransformerEncoder``, 12 heads, FFN
3072; traced on one sequence of 8 tokens). Every weight with two or more dimensions (convolutions,
linear layers, attention's ``in_proj_weight``) keeps 10% of its entries at random, a different
draw for each network.

Each configuration (model x threads x solver) runs in its own process, so that its peak memory
is its own: ``threads`` 1 sets ``RAYON_NUM_THREADS``, the BLAS variables and torch's threads
to 1; ``0`` leaves them alone (every core). The process builds the two models (untimed), then
times `to_network` on both (wall and CPU time: ``time.process_time`` counts every thread) and
`nnstd.distance` on the pair, and reads its peak resident set (``ru_maxrss``) before, after the
two `to_network` calls and after the distance. Each distance is checked to be finite. A solver
that refuses graphs prints ``refused: <reason>``.

Before the timed runs, a sanity check on small models of both kinds (a narrow resnet50 layout,
a 2-layer d=32 encoder, half their weights kept): a copy with every group renamed at random is
at distance 0 in every group under ``solver="auto"``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

THREAD_VARIABLES = (
    "RAYON_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
KEEP = 0.1  # 90% sparse


# Models -----------------------------------------------------------------------------------------


def resnet50_layout(width: int = 64, classes: int = 1000) -> Any:
    """torchvision's ``resnet50`` if installed (at ``width`` 64), else its layout built here:
    the same modules, names, shapes and forward."""
    import torch
    from torch import nn

    if width == 64 and classes == 1000:
        try:
            import torchvision

            return torchvision.models.resnet50()
        except ImportError:
            pass

    class Bottleneck(nn.Module):
        def __init__(self, c_in: int, mid: int, stride: int) -> None:
            super().__init__()
            out = mid * 4
            self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(mid)
            self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(mid)
            self.conv3 = nn.Conv2d(mid, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample: nn.Module | None = None
            if stride != 1 or c_in != out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(c_in, out, 1, stride, bias=False), nn.BatchNorm2d(out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = x if self.downsample is None else self.downsample(x)  # torchvision's order
            return self.relu(out + identity)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            c_in = width
            for i, (blocks, stride) in enumerate(zip((3, 4, 6, 3), (1, 2, 2, 2), strict=True)):
                mid = width * 2**i
                stage = []
                for b in range(blocks):
                    stage.append(Bottleneck(c_in, mid, stride if b == 0 else 1))
                    c_in = mid * 4
                self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c_in, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet50()


def transformer(d: int = 768, heads: int = 12, ffn: int = 3072, layers: int = 12) -> Any:
    from torch import nn

    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def sparse(model: Any, seed: int, keep: float) -> Any:
    """``model`` in eval mode with each weight of 2+ dimensions keeping ``keep`` of its
    entries at random (the rest zeroed: not connections)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.mul_(torch.rand(param.shape, generator=generator) < keep)
    return model.eval()


def build(kind: str, seed: int, image: int) -> tuple[Any, Any]:
    """A sparse model of ``kind`` and the input it is traced on."""
    import torch

    if kind == "resnet50":
        return sparse(resnet50_layout(), seed, KEEP), torch.randn(1, 3, image, image)
    if kind == "transformer":
        return sparse(transformer(), seed, KEEP), torch.randn(1, 8, 768)
    if kind == "small-resnet":
        return sparse(resnet50_layout(width=8, classes=10), seed, 0.5), torch.randn(1, 3, 32, 32)
    if kind == "small-transformer":
        model = transformer(d=32, heads=4, ffn=64, layers=2)
        return sparse(model, seed, 0.5), torch.randn(1, 5, 32)
    raise ValueError(f"unknown model {kind!r}")


# One configuration, in its own process ----------------------------------------------------------


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> dict[str, float]:
        return {
            "wall": time.perf_counter() - self.wall,
            "cpu": time.process_time() - self.cpu,
        }


def worker(task: dict[str, Any]) -> dict[str, Any]:
    import nnstd
    import nnstd.torch
    import torch

    if task["threads"] == 1:
        torch.set_num_threads(1)
    (a, x), (b, _) = build(task["model"], 1, task["image"]), build(task["model"], 2, task["image"])
    out: dict[str, Any] = {"peak_before_mib": peak_mib()}
    clock = Clock()
    net_a = nnstd.torch.to_network(a, example_inputs=x)
    net_b = nnstd.torch.to_network(b, example_inputs=x)
    out["to_network"] = clock.stop()
    out["peak_to_network_mib"] = peak_mib()
    out["groups"] = len(net_a.groups)
    out["connections"] = int(sum(net_a.connections))
    clock = Clock()
    try:
        d = nnstd.distance(net_a, net_b, solver=task["solver"])
    except nnstd.TopologyError as exc:
        out["refused"] = str(exc)
        return out
    out["distance"] = clock.stop()
    out["peak_distance_mib"] = peak_mib()
    out["value"] = float(d.value)
    out["finite"] = bool(np.isfinite(d.layers).all() and math.isfinite(d.value))
    out["ran"] = sorted(set(d.solvers))
    return out


def run(task: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    if task["threads"] == 1:
        env.update({name: "1" for name in THREAD_VARIABLES})
    else:
        for name in THREAD_VARIABLES:
            env.pop(name, None)
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(task)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"worker {task} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# The sanity check -------------------------------------------------------------------------------


def renamed(model: Any, spec: Any, seed: int) -> Any:
    """A copy of ``model`` with every hidden group of ``spec`` renamed at random (heads
    block-wise, one head order per head set)."""
    import copy

    import torch

    rng = np.random.default_rng(seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    head_orders: dict[str, Any] = {}
    for group in spec.groups:
        if group.kind != "hidden":
            continue
        if group.heads == 1:
            order = rng.permutation(group.size)
        else:
            width = group.size // group.heads
            heads = head_orders.setdefault(
                group.head_set or group.name, rng.permutation(group.heads)
            )
            order = np.concatenate([h * width + rng.permutation(width) for h in heads])
        for slot in (*group.writers, *group.readers, *group.followers):
            tensor = state[slot.tensor]
            index = slot.offset + (order[:, None] * slot.block + np.arange(slot.block)).ravel()
            target = slot.offset + np.arange(group.size * slot.block)
            moved = tensor.index_select(slot.axis, torch.as_tensor(index))
            tensor.index_copy_(slot.axis, torch.as_tensor(target), moved)
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out


def sanity() -> None:
    import nnstd
    import nnstd.torch

    for kind in ("small-resnet", "small-transformer"):
        model, x = build(kind, 3, 0)
        net = nnstd.torch.to_network(model, example_inputs=x)
        copy = nnstd.torch.to_network(renamed(model, net.spec, 4), example_inputs=x)
        d = nnstd.distance(net, copy, solver="auto")
        line = (
            f"sanity {kind}: {len(net.groups)} groups, renamed copy at max "
            f"{float(d.layers.max()):g} over its groups (auto)"
        )
        print(line, flush=True)
        if not (d.layers == 0).all():
            raise SystemExit(f"{kind}: a renamed copy is not at 0: {d.layers}")


# The table --------------------------------------------------------------------------------------


def show(task: dict[str, Any], r: dict[str, Any]) -> str:
    threads = "1 core" if task["threads"] == 1 else "all cores"
    head = f"{task['model']:<11} {threads:<9} {task['solver']:<9}"
    t = r["to_network"]
    part = (
        f"to_network x2 {t['wall']:6.2f} s (CPU {t['cpu']:6.2f} s), peak "
        f"{r['peak_to_network_mib']:,.0f} MiB (models built: {r['peak_before_mib']:,.0f})"
    )
    if "refused" in r:
        return f"{head} {part}; distance refused: {r['refused']}"
    d = r["distance"]
    if not r["finite"]:
        raise SystemExit(f"{task}: a distance is not finite: {r}")
    return (
        f"{head} {part}; distance {d['wall']:6.2f} s (CPU {d['cpu']:6.2f} s), peak "
        f"{r['peak_distance_mib']:,.0f} MiB; {r['groups']} groups, value {r['value']:.4f} "
        f"({'/'.join(r['ran'])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--models", default="resnet50,transformer")
    parser.add_argument("--threads", default="1,0", help="1: one core; 0: every core")
    parser.add_argument("--solvers", default="auto,canonical")
    parser.add_argument("--image", type=int, default=224, help="the ResNet's input side")
    parser.add_argument("--no-sanity", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    if not args.no_sanity:
        sanity()
    for model in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            for solver in args.solvers.split(","):
                task = {"model": model, "threads": threads, "solver": solver, "image": args.image}
                print(show(task, run(task)), flush=True)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
