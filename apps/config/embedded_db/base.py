"""PostgreSQL backend whose host is the embedded server's socket, started on demand."""

from django.db.backends.postgresql import base

from apps.config import embedded


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        params["host"] = embedded.socket_dir()
        params.setdefault("user", "postgres")
        return params
