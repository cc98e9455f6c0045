"""What `make run` installs, and what it prints: gunicorn's log, then one line saying where to
open Moyan."""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, LiveServer, app_env, wait_until
from services.open_bind import check_clients


def started(fake, tmp_path, **env):
    server = LiveServer({**app_env(fake, tmp_path / "data"), **env}, tmp_path / "server.log")
    server.start()
    wait_until(lambda: "Moyan is ready" in server.read_log())
    server.stop()
    return server.read_log()


def test_a_local_start_says_which_address_to_open(fake, tmp_path):
    log = started(fake, tmp_path)
    port = log.split("Listening at: http://127.0.0.1:")[1].split(" ")[0]
    assert f"墨言已就绪，请在浏览器打开 http://127.0.0.1:{port}" in log
    assert f"Moyan is ready: open http://127.0.0.1:{port}" in log
    assert "访问密码" not in log


def test_a_network_start_reminds_that_a_password_protects_it(fake, tmp_path):
    log = started(fake, tmp_path, MOYAN_HOST="0.0.0.0", MOYAN_PASSWORD="一个足够长的密码")
    assert "Moyan is ready: open http://127.0.0.1:" in log
    assert "由访问密码保护" in log and "a password protects it" in log


def test_make_run_installs_and_starts_without_the_postgresql_and_redis_clients(tmp_path):
    with open(os.path.join(ROOT, "requirements.lock")) as f:
        assert not re.search(r"^(psycopg|redis)\b", f.read(), flags=re.M)
    code = ("import sys; sys.modules.update(psycopg=None, redis=None)\n"  # as if not installed
            "import app\n"
            "assert app.create_app({'IMAGE_WORKER': False}).test_client().get('/').status_code == 200")
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**env, "MOYAN_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr


def test_a_scale_out_start_without_its_clients_says_to_run_make_install_scale(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(SystemExit, match="make install-scale") as refused:
        check_clients({"DATABASE_URL": "postgresql://moyan@localhost/moyan", "REDIS_URL": "redis://localhost"})
    assert "PostgreSQL、Redis" in str(refused.value)
    check_clients({"DATABASE_URL": "sqlite:////tmp/x.db"})  # the default needs neither
