"""Minimal reference code vendored from the papers' repositories, for the equivalence tests of
``tests/engine/matching/test_region_encoders.py`` (each file names its source, commit and licence)."""
