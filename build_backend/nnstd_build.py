"""PEP 517 build backend: maturin, without its silent Rust download.

When cargo is missing, maturin's backend fetches a whole Rust toolchain (about 700 MB) into a
cache before building. nnstd publishes wheels for Linux, macOS and Windows (Python >= 3.10), so
a build from source without Rust is almost always a mistake: say so and stop instead.
Set ``MATURIN_NO_INSTALL_RUST=`` (empty) to let maturin download Rust anyway.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

os.environ.setdefault("MATURIN_NO_INSTALL_RUST", "1")

import maturin  # noqa: E402  (reads the variable above when its hooks run)
from stage_data import stage_package_data  # noqa: E402  (build_backend/ is on the backend path)
from maturin import (  # noqa: E402, F401  (the PEP 517 hooks that need no check)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
)


def _check_cargo() -> None:
    if os.environ.get("MATURIN_NO_INSTALL_RUST") and shutil.which("cargo") is None:
        sys.stderr.write(
            "\nnnstd: building from source needs Rust (cargo on PATH), which is not installed.\n"
            "Prebuilt wheels exist for Linux, macOS and Windows, Python >= 3.10:\n"
            "    pip install --only-binary nnstd nnstd\n"
            "or install Rust from https://rustup.rs and retry.\n\n"
        )
        raise SystemExit(1)


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Mapping[str, Any] | None = None
) -> str:
    _check_cargo()
    return str(maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings))


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _check_cargo()
    stage_package_data()
    return str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _check_cargo()
    return str(maturin.build_editable(wheel_directory, config_settings, metadata_directory))
