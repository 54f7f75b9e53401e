"""The demonstration: the `demo` command, its project and users, and its generated data."""
