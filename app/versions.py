"""The library versions a build records, so a later load can say what made it."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata


def library_versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and each installed package's; packages that are not installed are left out."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
