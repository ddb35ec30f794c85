"""The package version (read by the build too, so it is stated once)."""

__version__ = "0.1.0"
