"""What `make run` prints: gunicorn's log, then one line saying where to open Moyan."""
from helpers import LiveServer, app_env, wait_until


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
