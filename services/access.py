"""Who may use Moyan: the optional access password, CSRF tokens, security headers.

Moyan holds API keys and history and is often reachable from a network, so:
- with a password set (MOYAN_PASSWORD or the settings editor), every page, fragment,
  stream and image needs a login, which the server can end (logout, a new password);
  wrong passwords are slowed down, more and more, but the right one always lets in;
- every state-changing request carries the session's CSRF token (htmx sends it in a
  header set on <body>, plain forms in a hidden field);
- every response says what the browser may load and run.
"""
import datetime
import hashlib
import hmac
import secrets
import time

from flask import current_app, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext
from flask_htmx import make_response
from werkzeug.exceptions import SecurityError
from werkzeug.security import check_password_hash, generate_password_hash

from models import LoginFailure, LoginSession, Setting, now
from services.open_bind import is_open_to_network, refusal
from services.settings import saved_values

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_ENDPOINTS = {"access.login", "language.switch", "static"}
MAX_FAILURES = 5  # wrong guesses from one address before each costs more time
FAILURE_WINDOW = datetime.timedelta(minutes=15)
MAX_FAILURE_DELAY = 30  # seconds

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
    "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'"])


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the page itself came over HTTPS."""

    def get_cookie_secure(self, app):
        return request.is_secure or super().get_cookie_secure(app)


def secret_key():
    """A random key made once and kept in the database, so sessions survive restarts."""
    return Setting.get_value("secret_key") or Setting.get_or_set("secret_key", secrets.token_hex(32))


def cookie_name(key):
    """A session cookie name of this install's own: two Moyans on one host (cookies ignore
    the port) would otherwise overwrite each other's login."""
    return "moyan_" + hmac.new(key.encode(), b"session cookie", hashlib.sha256).hexdigest()[:12]


def is_password_set():
    return bool(current_app.config.get("PASSWORD") or saved_values().get("password_hash"))


def is_password_from_env():
    return bool(current_app.config.get("PASSWORD"))


def check_password(candidate):
    env_password = current_app.config.get("PASSWORD")
    if env_password:
        return hmac.compare_digest(candidate.encode(), env_password.encode())
    stored = Setting.get_value("password_hash")
    return bool(stored) and check_password_hash(stored, candidate)


def save_password(password, again):
    """Save a new access password; return why not, or "" once saved. The browser that set it
    stays logged in; every other login has ended."""
    if is_password_from_env():
        return gettext("访问密码由环境变量设置，不能在这里修改。")
    if not 8 <= len(password) <= 200:
        return gettext("访问密码至少 8 个字符。")
    if password != again:
        return gettext("两次输入的密码不一致。")
    set_password(password)
    start_session()
    return ""


def set_password(password):
    Setting.set_value("password_hash", generate_password_hash(password) if password else None)


def password_mark():
    """Changes with the password (the environment's or the saved hash): a login made with
    another password has ended."""
    password = current_app.config.get("PASSWORD") or Setting.get_value("password_hash") or ""
    return hmac.new(current_app.secret_key.encode(), password.encode(), hashlib.sha256).hexdigest()


def start_session():
    """Log this browser in, on the server too; sessions that have ended are deleted."""
    lifetime = current_app.permanent_session_lifetime
    mark = password_mark()
    LoginSession.delete().where((LoginSession.created_at < now() - lifetime)
                                | (LoginSession.password_mark != mark)).execute()
    session["login_id"] = LoginSession.create(id=secrets.token_urlsafe(32), password_mark=mark).id
    session.permanent = True


def end_session():
    LoginSession.delete().where(LoginSession.id == session.pop("login_id", "")).execute()


def is_logged_in():
    login_id = session.get("login_id")
    lifetime = current_app.permanent_session_lifetime
    return bool(login_id) and LoginSession.select().where(
        (LoginSession.id == login_id) & (LoginSession.password_mark == password_mark())
        & (LoginSession.created_at > now() - lifetime)).exists()


def csrf_token():
    if "csrf_token" not in session:
        session["csrf_token"] = secrets.token_urlsafe(32)
    return session["csrf_token"]


def refuse_untrusted_host():
    """before_request, first: a Host outside TRUSTED_HOSTS is refused (400) before anything
    tries to build a URL, which cannot be done for it."""
    if isinstance(request.routing_exception, SecurityError):
        raise request.routing_exception


def protect():
    """before_request: the login wall, then the CSRF check."""
    if request.endpoint in OPEN_ENDPOINTS:
        return check_csrf()
    if is_password_set() and not is_logged_in():
        if request.headers.get("HX-Request"):
            return make_response("", 401, redirect=url_for("access.login"))
        if request.method in SAFE_METHODS:
            return redirect(url_for("access.login", next=request.full_path.rstrip("?")))
        return gettext("请先登录。"), 401
    return check_csrf()


def check_csrf():
    if request.method in SAFE_METHODS:
        return None
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = session.get("csrf_token", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return make_response(gettext("页面已过期或来源不明，请刷新页面后重试。"), 400,
                             {"Content-Type": "text/plain; charset=utf-8"}, retarget="#alerts", reswap="innerHTML")
    return None


def add_security_headers(response):
    set_security_headers(response.headers)
    return response


def set_security_headers(headers, *_file):
    """The headers every response carries; WhiteNoise calls it for each static file (with
    the file's path and URL)."""
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")


def recent_failures(address):
    return LoginFailure.select().where((LoginFailure.address == address)
                                       & (LoginFailure.at > now() - FAILURE_WINDOW)).count()


def try_login(password):
    """Log the browser in; return a sentence saying why not, or None.

    The right password always lets in, so that guesses from the owner's address (one
    address for a whole office behind NAT) cannot lock the owner out; each wrong guess
    costs time instead, more and more after the first few."""
    address = request.remote_addr or ""
    if check_password(password):
        LoginFailure.delete().where(LoginFailure.address == address).execute()
        session.clear()
        start_session()
        return None
    LoginFailure.create(address=address)
    failures = recent_failures(address)
    time.sleep(failure_delay(failures))
    if failures > MAX_FAILURES:
        return gettext("密码不对。这个地址最近输错了很多次，每次输错都要多等一会儿，请确认密码后再试。")
    return gettext("密码不对，请重试。")


def failure_delay(failures):
    """Seconds a wrong guess costs: the configured delay (1 s) for the first few in the
    window, then doubling with each, up to MAX_FAILURE_DELAY."""
    doublings = min(max(0, failures - MAX_FAILURES), 16)  # 2**16 s is far past the cap
    return min(current_app.config["LOGIN_FAILURE_DELAY"] * 2 ** doublings, MAX_FAILURE_DELAY)


def check_open_bind(config):
    """Refuse to serve a network without a password, unless told to."""
    if is_open_to_network(config) and not is_password_set():
        raise SystemExit(refusal(config["HOST"]))


