"""Export bundles: a subject's data as one streamed ZIP of JSON or CSV files (CONTRACT.md).

`build_bundle()` yields the ZIP as it is produced; formats are looked up in `EXPORTERS`.
The `dsar export` command is `api.cli.export`.
"""

from exporters._registry import EXPORTERS, Exporter, UnknownFormat, exporter
from exporters.bundle import PURPOSES, BundleError, build_bundle

__all__ = [
    "EXPORTERS",
    "PURPOSES",
    "BundleError",
    "Exporter",
    "UnknownFormat",
    "build_bundle",
    "exporter",
]
