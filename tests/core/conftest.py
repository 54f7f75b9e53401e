"""The CSV tests export from every app: their fixtures."""

from tests.reports.conftest import books  # noqa: F401
from tests.vendors.conftest import vendor  # noqa: F401
