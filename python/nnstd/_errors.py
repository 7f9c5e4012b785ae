"""The package's one exception type (declared in the native module, re-exported here)."""

from nnstd._core import TopologyError

__all__ = ["TopologyError"]
