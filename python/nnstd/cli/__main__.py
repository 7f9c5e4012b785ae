"""``python -m nnstd.cli``: the ``nnstd`` command."""

import sys

from nnstd.cli import main

sys.exit(main())
