"""The client's version, in a module of its own so the package and its modules can all read it."""

__version__ = "0.1.0"
