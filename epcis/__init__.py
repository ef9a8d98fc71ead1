"""EPCIS 2.0 custody events."""
