"""SOAP faces of the catalog: one module per dialect, Spyne kept behind this package."""
