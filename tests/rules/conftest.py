from tests.vendors.conftest import vendor  # noqa: F401
