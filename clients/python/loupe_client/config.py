"""Where the command line finds its server and token: flags, the environment, a config file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from loupe_client.errors import LoupeError


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


def config_path() -> Path:
    """$LOUPE_CONFIG, else loupe/config.json in $XDG_CONFIG_HOME (default ~/.config)."""
    given = os.environ.get("LOUPE_CONFIG")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "loupe" / "config.json"


def read_config(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LoupeError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise LoupeError(f"{path} does not hold a JSON object.")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def write_config(url: str, token: str, path: Path | None = None) -> Path:
    """Store the server and token, readable by this user only (0600, its folder 0700)."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Made with 0600 from the start (not chmod-ed after writing), so the token is never
    # readable by others, not even for a moment; fchmod covers a file that was already there.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump({"url": url, "token": token}, f, indent=2)
        f.write("\n")
    return path


def credentials() -> Credentials:
    """$LOUPE_URL and $LOUPE_TOKEN, each else the config file's (written by `loupe login`)."""
    stored = read_config()
    url = os.environ.get("LOUPE_URL") or stored.get("url")
    token = os.environ.get("LOUPE_TOKEN") or stored.get("token")
    if not url or not token:
        missing = " and ".join(n for n, v in (("server URL", url), ("token", token)) if not v)
        raise LoupeError(f"Which {missing}? Run `loupe login`, or set LOUPE_URL and LOUPE_TOKEN.")
    return Credentials(url=url, token=token)
