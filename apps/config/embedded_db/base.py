"""PostgreSQL backend whose host is the embedded server's socket, started on demand."""

from django.db.backends.postgresql import base

from apps.config import embedded
from apps.config.embedded_db.client import EmbeddedDatabaseClient


class DatabaseWrapper(base.DatabaseWrapper):
    client_class = EmbeddedDatabaseClient

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        params["host"] = embedded.socket_dir()
        params.setdefault("user", "postgres")
        return params
