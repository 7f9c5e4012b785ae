"""The paper's constants (Liu et al., "Topological Insights into Sparse Neural Networks",
ECML-PKDD 2020), in one place: the snapshots its runs saved, its Figure 4's panels and layout,
and the set-up of its experiment. The CLI, the plots, the generator and the topology sets read
them from here."""

from __future__ import annotations

from dataclasses import dataclass

from nnstd.topology_set import INIT

# The epochs after which the paper's runs saved each network (``epoch_000`` .. ``epoch_190``).
PAPER_SNAPSHOTS = (0, 10, 20, 30, 40, 50, 100, 150, 190)

# The paper's experiment: one sparse network at 0.6% density, nine more each moving 1% of the
# previous one's connections, all trained with SET (zeta 0.3) for epochs 0..190.
PAPER_DENSITY = 0.006
PAPER_NETWORKS = 10
PAPER_REWIRE = 0.01
PAPER_EPOCHS = 191
PAPER_ZETA = 0.3


@dataclass(frozen=True)
class Panel:
    """One panel of the paper's Figure 4: its letter, the snapshot it shows, its caption."""

    letter: str
    snapshot: str
    caption: str


# The paper's Figure 4: (a) the initial networks, (b)-(f) after epochs 10, 30, 50, 100, 190.
PAPER_PANELS = (
    Panel("a", INIT, "Epoch 0"),
    Panel("b", "epoch_010", "Epoch 10"),
    Panel("c", "epoch_030", "Epoch 30"),
    Panel("d", "epoch_050", "Epoch 50"),
    Panel("e", "epoch_100", "Epoch 100"),
    Panel("f", "epoch_190", "Epoch 190"),
)
# The snapshots the paper's Figure 4 shows, in panel order.
FIGURE4_EPOCHS = tuple(panel.snapshot for panel in PAPER_PANELS)
# Shown in panel (a) when a set has no initial networks (the paper's published data).
INIT_STAND_IN = "epoch_000"
CMAP = "gnuplot"  # the paper's colour map
PANEL_COLUMNS = 3  # the paper's Figure 4 is 2 x 3
