"""The egress policy: an operator cannot aim outgoing webhooks or SMTP at loopback, private or metadata
addresses (in any spelling), cannot read an internal service's answer, and cannot tell open from closed ports."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webapp import egress
from webapp.channels.webhook_http import HttpWebhook
from webapp.extensions import db
from webapp.models import Notification, NotificationStatus, SmtpConfig, WebhookDelivery
from webapp.security import encrypt_secret
from webapp.services.integrations import endpoints

INTERNAL_SECRET = "internal-admin-token-4242"


class InternalService:
    """An HTTP service on loopback that must stay unreachable: counts requests, answers a secret."""

    def __init__(self, host: str = "127.0.0.1"):
        self.requests = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                service.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = INTERNAL_SECRET.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def internal():
    service = InternalService()
    yield service
    service.stop()


@pytest.fixture
def strict(app):
    """The production default: nothing allow-listed."""
    app.config["EGRESS_ALLOW"] = ""
    return app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.3.4.5",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT (Alibaba's metadata is 100.100.100.200)
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",  # AWS's IPv6 metadata
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused(app, address):
    app.config["EGRESS_ALLOW"] = ""
    assert not egress.is_public(ipaddress.ip_address(address))
    assert egress.check_host(address) == egress.BLOCKED


@pytest.mark.parametrize(
    ("spelling", "meaning"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.1", "127.0.0.1"),  # hexadecimal, short
        ("127.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:7f00:1]", "127.0.0.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
    ],
)
def test_every_spelling_of_an_ip_is_read_as_the_ip_it_means(app, spelling, meaning):
    app.config["EGRESS_ALLOW"] = ""
    address = egress.literal_address(spelling)
    assert address is not None
    assert str(address.ipv4_mapped if getattr(address, "ipv4_mapped", None) else address) == meaning
    assert egress.check_host(spelling) == egress.BLOCKED


def test_public_addresses_pass_and_the_allow_list_opens_named_networks_and_hosts(app):
    app.config["EGRESS_ALLOW"] = ""
    for public in ("8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"):
        assert egress.is_public(ipaddress.ip_address(public))
        assert egress.check_host(public) is None
    app.config["EGRESS_ALLOW"] = "10.0.0.0/8, smtp.internal"
    assert egress.check_host("10.2.3.4") is None
    assert egress.check_host("192.168.0.1") == egress.BLOCKED
    assert egress.permitted("smtp.internal", ipaddress.ip_address("192.168.0.1"))


def test_a_bad_allow_list_stops_the_app_with_its_name(monkeypatch, tmp_path):
    from webapp.config import ConfigError, from_environment

    monkeypatch.setenv("EGRESS_ALLOW", "10.0.0.0/8, not a/host")
    with pytest.raises(ConfigError, match="EGRESS_ALLOW"):
        from_environment(str(tmp_path))


def test_a_host_name_resolving_to_loopback_is_refused_at_connect(strict, internal):
    with pytest.raises(egress.EgressBlocked):
        egress.create_connection("localhost", internal.port, 2)
    assert internal.requests == 0


def _endpoint(customer, admin, url):
    endpoint, _ = endpoints.create_endpoint(
        customer=customer, name="Hook", url=url, event_types=[], is_active=True, actor=admin
    )
    db.session.commit()
    return endpoint


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]", "[::1]"],
)
def test_send_test_to_an_internal_service_is_blocked_and_shows_nothing_of_it(
    strict, client, login_as, customer, make_user, internal, drain, host
):
    admin = make_user("admin", customers=[])
    endpoint = _endpoint(customer, admin, f"http://{host}:{internal.port}/admin")
    login_as("operator", customers=[customer])
    client.post(f"/integrations/webhooks/{endpoint.id}/test")
    drain()
    assert internal.requests == 0  # the request never left
    notification = db.session.scalars(db.select(Notification)).one()
    assert notification.status == NotificationStatus.FAILED
    assert egress.BLOCKED in notification.error_message
    attempt = db.session.scalars(db.select(WebhookDelivery)).one()
    assert attempt.error == egress.BLOCKED and attempt.response_excerpt is None
    page = client.get(f"/integrations/webhooks/{endpoint.id}").text
    status = client.get(f"/deliveries/{notification.id}/status").text
    assert INTERNAL_SECRET not in page + status
    assert egress.BLOCKED in page


def test_open_and_closed_ports_look_the_same(strict, client, login_as, customer, make_user, internal, drain):
    admin = make_user("admin", customers=[])
    open_hook = _endpoint(customer, admin, f"http://127.0.0.1:{internal.port}/")
    closed_hook = _endpoint(customer, admin, f"http://127.0.0.1:{_closed_port()}/")
    login_as("admin", customers=[])
    client.post(f"/integrations/webhooks/{open_hook.id}/test")
    client.post(f"/integrations/webhooks/{closed_hook.id}/test")
    drain()
    errors = {a.endpoint_id: a.error for a in db.session.scalars(db.select(WebhookDelivery))}
    assert errors[open_hook.id] == errors[closed_hook.id] == egress.BLOCKED
    # and where loopback is allowed (development), a closed port says only that it could not connect
    strict.config["EGRESS_ALLOW"] = "127.0.0.0/8"
    attempt = HttpWebhook(timeout=5).post(
        url=f"http://127.0.0.1:{_closed_port()}/", secret="s", body=b"{}", event_name="test", delivery_id="1"
    )
    assert attempt.error == egress.COULD_NOT_CONNECT


def test_redirects_are_not_followed_and_answers_are_sanitised(app, internal):
    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{internal.port}/admin")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = ("refused\r\nX-Injected: 1\x1b[31m" + "x" * 5000).encode()
            self.send_response(400, "Custom\tPeer Phrase")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        backend = HttpWebhook(timeout=5)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        moved = backend.post(url=base + "/moved", secret="s", body=b"{}", event_name="t", delivery_id="1")
        assert moved.status_code == 302 and "redirects are not followed" in moved.error
        assert internal.requests == 0
        refused = backend.post(url=base + "/", secret="s", body=b"{}", event_name="t", delivery_id="2")
        assert refused.error == "HTTP 400 Bad Request"  # the standard phrase, not the peer's
        assert len(refused.response_excerpt) <= 201
        assert "\r" not in refused.response_excerpt and "\x1b" not in refused.response_excerpt
    finally:
        server.shutdown()
        server.server_close()


def test_dns_rebinding_cannot_swap_the_checked_address(app, monkeypatch):
    """The name resolves to an allowed address when checked and to loopback afterwards: the connection goes to
    the checked address, because it is the one connected to (no second lookup)."""
    allowed, target = InternalService("127.0.0.2"), InternalService("127.0.0.1")
    app.config["EGRESS_ALLOW"] = "127.0.0.2/32"
    real = socket.getaddrinfo
    answers = iter(["127.0.0.2"] + ["127.0.0.1"] * 10)

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        backend = HttpWebhook(timeout=5)
        for n in range(3):  # a fresh connection each time: each is resolved and checked again
            backend.session.close()
            attempt = backend.post(
                url=f"http://rebind.example:{allowed.port}/", secret="s", body=b"{}", event_name="t", delivery_id="1"
            )
            if n == 0:
                assert attempt.ok
            else:
                assert attempt.error == egress.BLOCKED
        assert allowed.requests == 1 and target.requests == 0
    finally:
        allowed.stop()
        target.stop()


class Listener:
    """A TCP port on loopback that records whether anyone connected (an internal SMTP or other service)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]

    def connected(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return False
        conn.close()
        return True


def test_smtp_test_send_to_an_internal_address_never_connects_nor_sends_the_password(
    strict, client, login_as, customer, drain
):
    listener = Listener()
    config = SmtpConfig(
        customer_id=customer.id,
        name="Relay",
        host="127.0.0.1",
        port=listener.port,
        security="none",
        username="acme-mailer",
        password_encrypted=encrypt_secret("acme-real-password"),
        from_email="noc@acme.example.com",
    )
    db.session.add(config)
    db.session.commit()
    login_as("operator", customers=[customer])
    answer = client.post(f"/smtp/{config.id}/test", data={"to": "ops@example.com"})
    assert answer.status_code in (200, 302)
    drain()
    assert not listener.connected()
    notification = db.session.scalars(db.select(Notification)).one()
    assert notification.status == NotificationStatus.FAILED
    assert egress.BLOCKED in notification.error_message and notification.error_code == "egress"
    listener.sock.close()


def test_smtp_errors_do_not_tell_open_from_closed_ports(app):
    """Allowed (development), a closed port and a silent open one both say only "could not connect"."""
    from webapp.channels.base import TransientError
    from webapp.channels.email_smtp import Email, SmtpEmail, SmtpSettings

    listener = Listener()  # accepts, says nothing: smtplib times out waiting for the banner
    messages = []
    for port in (listener.port, _closed_port()):
        settings = SmtpSettings(
            host="127.0.0.1", port=port, security="none", username=None, password=None, from_email="a@b.c", timeout=1
        )
        with pytest.raises(TransientError) as caught:
            SmtpEmail().send(settings, Email(to="x@example.com", subject="s", text="t"))
        messages.append(caught.value.message.replace(str(port), "PORT"))
    assert messages[0] == messages[1]
    assert egress.COULD_NOT_CONNECT in messages[0]
    listener.sock.close()


def test_an_smtp_host_that_does_not_exist_fails_for_good_in_words(app, monkeypatch):
    """NXDOMAIN will not change on a retry: permanent, with what to fix. A resolver that did not answer
    (EAI_AGAIN) stays temporary."""
    from webapp.channels.base import PermanentError, TransientError
    from webapp.channels.email_smtp import Email, SmtpEmail, SmtpSettings

    settings = SmtpSettings(
        host="smtp.nowhere.example", port=587, security="none", username=None, password=None, from_email="a@b.c"
    )
    email = Email(to="x@example.com", subject="s", text="t")

    def no_such_name(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(egress.socket, "getaddrinfo", no_such_name)
    with pytest.raises(PermanentError) as caught:
        SmtpEmail().send(settings, email)
    assert caught.value.code == "dns"
    assert "the name smtp.nowhere.example does not exist in DNS; check the host name" in caught.value.message
    assert "gaierror" not in caught.value.message and "Errno" not in caught.value.message

    def resolver_down(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(egress.socket, "getaddrinfo", resolver_down)
    with pytest.raises(TransientError):
        SmtpEmail().send(settings, email)


SMTP_FORM = {
    "name": "Primary",
    "host": "smtp.acme.example",
    "port": "587",
    "security": "starttls",
    "username": "mailer",
    "password": "acme-real-password",
    "from_email": "noc@acme.example.com",
    "timeout_seconds": "30",
    "enabled": "y",
}


@pytest.mark.parametrize(
    "change", [{"host": "evil.example"}, {"port": "2525"}, {"username": "other"}, {"security": "none"}]
)
def test_moving_an_smtp_config_without_its_password_clears_it_page(client, login_as, customer, change):
    login_as("operator", customers=[customer])
    assert client.post("/smtp/new", data={**SMTP_FORM, "customer": customer.id}).status_code == 302
    config = db.session.scalars(db.select(SmtpConfig)).one()
    assert "Changing the host, port, username or security clears" in client.get(f"/smtp/{config.id}").text
    answer = client.post(f"/smtp/{config.id}", data={**SMTP_FORM, "password": "", **change}, follow_redirects=True)
    assert "the stored password was cleared: enter it again" in answer.text
    db.session.expire_all()
    assert db.session.get(SmtpConfig, config.id).password_encrypted is None
    # given again with the move, it is kept for the new server
    client.post(f"/smtp/{config.id}", data={**SMTP_FORM, **change, "host": "smtp2.acme.example"})
    db.session.expire_all()
    from webapp.security import decrypt_secret

    assert decrypt_secret(db.session.get(SmtpConfig, config.id).password_encrypted) == "acme-real-password"


@pytest.mark.parametrize("change", [{"host": "evil.example"}, {"port": 2525}, {"username": "x"}, {"security": "ssl"}])
def test_moving_an_smtp_config_without_its_password_clears_it_api(client, make_user, customer, change):
    from webapp.models import Role
    from webapp.services.integrations import api_keys

    _, plain = api_keys.create_key(
        name="k", scopes=["write"], customer=customer, expires_days=None, created_by=make_user(Role.ADMIN)
    )
    db.session.commit()
    headers = {"X-API-Key": plain}
    body = {**SMTP_FORM, "port": 587, "timeout_seconds": 30, "enabled": True, "customer_id": customer.id}
    created = client.post("/api/v1/smtp", json=body, headers=headers)
    assert created.status_code == 201, created.json
    moved = client.patch(f"/api/v1/smtp/{created.json['id']}", json={**change, "password": "********"}, headers=headers)
    assert moved.status_code == 200 and moved.json["password"] is None
    config = db.session.get(SmtpConfig, created.json["id"])
    db.session.refresh(config)
    assert config.password_encrypted is None
