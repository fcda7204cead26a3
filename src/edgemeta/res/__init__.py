"""Packaged resources: the default units of measure (uom.yaml)."""
