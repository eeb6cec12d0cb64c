"""The version, in its own module so that modules of the package can read it without a cycle."""

__version__ = "0.1.0"
