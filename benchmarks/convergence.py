"""`nnstd convergence` on a sparse-training run's checkpoints: a ResNet's 20 epochs.

    python benchmarks/convergence.py [--epochs 20] [--solver auto] [--threads 0]
                                     [--model resnet18 | --model chain] [--keep DIR]

Writes ``--epochs`` checkpoints ``epoch_<n>.pt`` (state dicts, pruned weights stored as zeros)
of one 90%-sparse network whose mask drifts from epoch to epoch as in sparse training
(RigL / SET: each epoch drops a share of the live connections, cosine-decaying from 30% to 0,
and regrows as many at random dead places), and a spec (``spec.json``, written by
``nnstd.torch.spec`` from the model on one 1x3x224x224 image), to a temporary folder. Then it
times, in a fresh process, what a user types::

    nnstd convergence DIR/epoch_*.pt --spec DIR/spec.json --solver auto --threads N --quiet

``--model resnet18`` (default) is torchvision's resnet18 layout (built here when torchvision is
not installed: basic blocks 2-2-2-2, widths 64-512, 1000 classes), a graph, read through the
spec; ``--model chain`` is a 784-1000-1000-10 MLP, a chain, read without one. It prints the
command's wall time, its CPU time (user + system, every thread) and its peak resident set
(``ru_maxrss`` of the child), and the command's own output.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEEP = 0.1  # 90% sparse
DROP = 0.3  # the share of live connections moved at the first epoch, cosine-decaying to 0


def resnet18_layout() -> Any:
    """torchvision's ``resnet18`` if installed, else its layout built here."""
    import torch
    from torch import nn

    try:
        import torchvision

        return torchvision.models.resnet18()
    except ImportError:
        pass

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample: nn.Module | None = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            c_in = 64
            for i, width in enumerate((64, 128, 256, 512)):
                stride = 1 if i == 0 else 2
                blocks = [BasicBlock(c_in, width, stride), BasicBlock(width, width, 1)]
                self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
                c_in = width
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18()


def chain() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
        nn.Linear(1000, 10),
    )  # fmt: skip


def write_run(kind: str, epochs: int, folder: Path, seed: int = 0) -> int:
    """The checkpoints (and, for a graph, the spec) in ``folder``; the number of
    connections that moved over the run."""
    import nnstd.torch
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = (resnet18_layout() if kind == "resnet18" else chain()).eval()
    weights = [p for p in model.parameters() if p.dim() >= 2]
    masks = [torch.rand(p.shape, generator=generator) < KEEP for p in weights]
    if kind == "resnet18":
        spec = nnstd.torch.spec(model, torch.randn(1, 3, 224, 224))
        spec.save(folder / "spec.json")
    moved = 0
    for epoch in range(epochs):
        if epoch:  # drop a share of each layer's live connections, regrow as many elsewhere
            share = DROP * (1 + math.cos(math.pi * (epoch - 1) / max(epochs - 1, 1))) / 2
            for mask in masks:
                flat = mask.view(-1)
                live, dead = flat.nonzero().view(-1), (~flat).nonzero().view(-1)
                n = min(int(share * len(live)), len(dead))
                drop = live[torch.randperm(len(live), generator=generator)[:n]]
                grow = dead[torch.randperm(len(dead), generator=generator)[:n]]
                flat[drop], flat[grow] = False, True
                moved += n
        with torch.no_grad():
            for param, mask in zip(weights, masks, strict=True):
                param.normal_(0, 0.05, generator=generator).mul_(mask)  # as trained, masked
        torch.save(model.state_dict(), folder / f"epoch_{epoch}.pt")
    return moved


def timed(command: list[str]) -> dict[str, Any]:
    """Wall time, CPU time and peak memory of ``command`` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mib": after.ru_maxrss / 1024, "out": done.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", choices=("resnet18", "chain"), default="resnet18")
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--threads", default="0", help="0: every core (the CLI's default)")
    parser.add_argument(
        "--keep", type=Path, help="write the run here and keep it (a run already there is reused)"
    )
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="nnstd-convergence-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        if len(list(folder.glob("epoch_*.pt"))) == args.epochs:  # --keep'ing an earlier run
            print(f"reusing the {args.epochs} checkpoints in {folder}", flush=True)
        else:
            moved = write_run(args.model, args.epochs, folder)
            size = sum(f.stat().st_size for f in folder.glob("epoch_*.pt")) / 2**20
            print(
                f"{args.epochs} checkpoints of a 90%-sparse {args.model} ({size:,.0f} MiB, "
                f"{moved:,} connections moved over the run) written in "
                f"{time.perf_counter() - start:.1f} s to {folder}",
                flush=True,
            )
        command = [sys.executable, "-m", "nnstd.cli", "convergence"]
        command += [str(folder / "epoch_*.pt")]
        if args.model == "resnet18":
            command += ["--spec", str(folder / "spec.json")]
        command += ["--solver", args.solver, "--threads", args.threads, "--quiet"]
        shown = " ".join(["nnstd", *command[3:]]).replace(str(folder), "DIR")
        print(f"$ {shown}", flush=True)
        result = timed(command)
        print(result["out"].rstrip())
        print(
            f"wall {result['wall']:.2f} s, CPU {result['cpu']:.2f} s, peak "
            f"{result['peak_mib']:,.0f} MiB"
        )
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
