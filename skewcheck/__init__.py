"""skewcheck: load testing with distribution-aware release gating."""

__version__ = "0.1.0"
