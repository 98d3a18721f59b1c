"""`recsys serve` binds loopback by default; any other address needs a login."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.settings import Settings
from tests.conftest import REPO
from ui.config import ConfigError
from ui.server import auth_for, is_loopback


def test_loopback_is_recognised():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org", ""))


def test_only_loopback_may_go_without_a_login(tmp_path):
    bare = Settings(home=tmp_path)
    assert bare.server_host == "127.0.0.1" and auth_for(bare, bare.server_host) is None
    for host in ("0.0.0.0", "192.168.1.4", "::"):
        with pytest.raises(ConfigError, match="RECSYS_AUTH_USER and RECSYS_AUTH_PASSWORD"):
            auth_for(bare, host)
    with pytest.raises(ConfigError):
        auth_for(Settings(home=tmp_path, auth_user="ann"), "0.0.0.0")  # a user without a password
    login = Settings(home=tmp_path, auth_user="ann", auth_password="s3cret")
    assert auth_for(login, "0.0.0.0") == ("ann", "s3cret") and auth_for(login, "127.0.0.1") == ("ann", "s3cret")


def test_serve_on_all_interfaces_without_a_login_refuses_at_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "ui.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("recsys serve: refusing to serve on 0.0.0.0")
    assert "RECSYS_AUTH_PASSWORD" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_turn_concurrency_is_a_checked_setting(tmp_path):
    from ui.config import load_settings

    env = {"RECSYS_HOME": str(tmp_path)}
    assert load_settings(env).turn_concurrency == 2
    assert load_settings({**env, "RECSYS_TURN_CONCURRENCY": "4"}).turn_concurrency == 4
    for bad in ("0", "65", "two"):
        with pytest.raises(ConfigError, match="turn_concurrency"):
            load_settings({**env, "RECSYS_TURN_CONCURRENCY": bad})
