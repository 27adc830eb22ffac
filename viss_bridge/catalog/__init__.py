"""Datasets: manifests, the catalog they form, and the store their records live in."""

from viss_bridge.catalog.manifest import Dataset, Field, ManifestError, load_manifest
from viss_bridge.catalog.catalog import Catalog, CatalogError, load_catalog

__all__ = ["Catalog", "CatalogError", "Dataset", "Field", "ManifestError", "load_catalog", "load_manifest"]
