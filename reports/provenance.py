"""Where a report or an exported config came from: package versions and a UTC timestamp."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import metadata

PACKAGES = ("resnetx-sweeps", "torch", "torchvision", "ray", "mlflow", "optuna", "pandas", "numpy")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions read from package metadata (nothing is imported, so this is instant)."""
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
