"""nnstd: the Neural Network Sparse Topology Distance, exact and fast.

How different are two sparse topologies, layer by layer, up to renaming of hidden neurons?
NNSTD (Liu et al., "Topological Insights into Sparse Neural Networks", ECML-PKDD 2020) matches
the neurons of each layer by their input sets and carries the matching forward.

>>> import numpy as np, nnstd
>>> a = nnstd.Network([np.eye(3)])
>>> nnstd.distance(a, a).value
0.0
"""

# Public submodules reachable as attributes: nnstd.topology_set.bundled_topo_root(),
# nnstd.analysis.consecutive_distances(...).
from nnstd import analysis as analysis
from nnstd import topology_set as topology_set
from nnstd._align import align, alignment, overlap
from nnstd._api import Distance, distance, pairwise
from nnstd._errors import TopologyError
from nnstd._many import cross, to_reference
from nnstd._network import Network, load_network

__all__ = [
    "Distance",
    "Network",
    "TopologyError",
    "align",
    "alignment",
    "cross",
    "distance",
    "load_network",
    "overlap",
    "pairwise",
    "to_reference",
]
__version__ = "0.1.0"
