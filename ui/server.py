"""`recsys serve`: where the app binds, and the rule that only loopback may go without a login."""
from __future__ import annotations

import ipaddress

from ui.config import ConfigError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere: treat it as exposed


def auth_for(settings, host: str) -> tuple[str, str] | None:
    """The (user, password) that `launch(auth=...)` needs, or None on loopback without one.
    Binding beyond loopback without both is refused."""
    user, password = settings.auth_user, settings.auth_password
    if user and password:
        return (user, password)
    if is_loopback(host):
        return None
    raise ConfigError(f"refusing to serve on {host}, which is reachable beyond this machine, without a login: "
                      f"set RECSYS_AUTH_USER and RECSYS_AUTH_PASSWORD (or auth_user / auth_password in "
                      f"config.toml), or bind 127.0.0.1")


def serve(settings, host: str | None = None, port: int | None = None) -> None:
    from assistant.runtime import build_assistant, start_refresh_scheduler
    from data.home import RuntimeHome
    from ui.chat_app import build_app, launch

    host = host or settings.server_host
    port = port or settings.server_port
    auth = auth_for(settings, host)  # before loading anything: a refusal is immediate
    assistant = build_assistant(settings)
    app = build_app(assistant, RuntimeHome(settings.home), turn_concurrency=settings.turn_concurrency)
    start_refresh_scheduler(settings, assistant)  # None when both refresh triggers are off
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"chat UI on http://{shown}:{port} (bound to {host}{', login required' if auth else ''})", flush=True)
    launch(app, host, port, auth=auth, auth_message="Log in to the movie recommendation assistant" if auth else None)
