"""Message templates: edit rules by role and customer, overrides, and the JSON preview."""

from __future__ import annotations

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Channel, MessageTemplate


def _default(channel: str = "sms", event_type: str | None = None) -> MessageTemplate:
    query = sa.select(MessageTemplate).where(
        MessageTemplate.customer_id.is_(None), MessageTemplate.channel == Channel(channel)
    )
    if event_type:
        query = query.where(MessageTemplate.event_type == event_type)
    template = db.session.scalar(query.limit(1))
    if template is None:  # the initial migration seeds alert/sms only
        template = MessageTemplate(
            name="alert_email", event_type="alert", channel=Channel(channel), subject="{{ alertname }}", body_text="x"
        )
        db.session.add(template)
        db.session.commit()
    return template


def test_preview_shows_rendered_text_with_sms_encoding_and_segments(client, login_as):
    login_as("operator")
    template = _default("sms")
    response = client.post(
        f"/templates/{template.id}/preview",
        data={"body_text": "[{{ severity|upper }}] {{ alertname }} on {{ instance }}"},
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["body_text"] == "[CRITICAL] DiskFull on db-1:9100"
    assert data["sms"] == {"encoding": "GSM-7", "units": 34, "segments": 1}  # [ and ] take two septets
    assert data["errors"] == {}
    unicode = client.post(f"/templates/{template.id}/preview", data={"body_text": "🔥 " + "x" * 70}).get_json()
    assert unicode["sms"]["encoding"] == "UCS-2" and unicode["sms"]["segments"] == 2


def test_preview_reports_template_errors_clearly(client, login_as):
    login_as("operator")
    template = _default("email")
    data = client.post(
        f"/templates/{template.id}/preview",
        data={
            "subject": "{{ alertname",
            "body_text": "{{ ''.__class__.__mro__ }}",
            "body_html": "<b>{{ summary }}</b>",
        },
    ).get_json()
    assert data["errors"]["subject"].startswith("template error:")
    assert "unsafe" in data["errors"]["body_text"] or "not safely" in data["errors"]["body_text"]
    assert data["body_html"] == "<b>Disk almost full</b>"


def test_preview_escapes_html_values(client, login_as):
    login_as("operator")
    template = _default("email")
    data = client.post(
        f"/templates/{template.id}/preview", data={"body_text": "x", "body_html": "{{ '<script>' }}"}
    ).get_json()
    assert data["body_html"] == "&lt;script&gt;"


def test_admin_edits_a_default_template(client, login_as):
    login_as("admin")
    template = _default("sms")
    response = client.post(f"/templates/{template.id}", data={"body_text": "ALERT {{ alertname }}"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(MessageTemplate, template.id).body_text == "ALERT {{ alertname }}"


def test_a_broken_template_is_not_saved(client, login_as):
    login_as("admin")
    template = _default("sms")
    before = template.body_text
    response = client.post(f"/templates/{template.id}", data={"body_text": "{% if %}"})
    assert response.status_code == 400 and "template error" in response.text
    assert "{% if %}" in response.text  # what was typed stays in the field
    db.session.expire_all()
    assert db.session.get(MessageTemplate, template.id).body_text == before


def test_operators_cannot_change_defaults_but_make_their_customers_copy(client, login_as, customer):
    login_as("operator")
    template = _default("sms")
    page = client.get(f"/templates/{template.id}")
    assert page.status_code == 200 and "Make a copy for this customer" in page.text
    assert client.post(f"/templates/{template.id}", data={"body_text": "mine"}).status_code == 403
    response = client.post(f"/templates/{template.id}/override", data={"customer_id": customer.id})
    assert response.status_code == 302
    copy = db.session.scalar(sa.select(MessageTemplate).where(MessageTemplate.customer_id == customer.id))
    assert (copy.event_type, copy.channel) == (template.event_type, template.channel)
    assert client.post(f"/templates/{copy.id}", data={"body_text": "Acme: {{ alertname }}"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(MessageTemplate, copy.id).body_text == "Acme: {{ alertname }}"
    assert db.session.get(MessageTemplate, template.id).body_text != "Acme: {{ alertname }}"


def test_other_customers_overrides_are_invisible_and_viewers_change_nothing(client, login_as, customer, make_customer):
    other = make_customer("Globex")
    template = _default("sms")
    theirs = MessageTemplate(
        customer_id=other.id, name="x", event_type=template.event_type, channel=template.channel, body_text="theirs"
    )
    db.session.add(theirs)
    db.session.commit()
    login_as("operator")  # of Acme Corp
    assert client.get(f"/templates/{theirs.id}").status_code == 404
    assert client.post(f"/templates/{template.id}/override", data={"customer_id": other.id}).status_code == 400
    assert "theirs" not in client.get("/templates").text
    client.post("/logout")
    login_as("viewer")
    page = client.get(f"/templates/{template.id}")
    assert "You can read this template but not change it." in page.text
    assert client.post(f"/templates/{template.id}/override", data={"customer_id": customer.id}).status_code == 403


def test_admin_creates_a_default_template_and_operator_one_for_their_customer(client, login_as, customer):
    login_as("admin")
    pair = sa.select(MessageTemplate).where(
        MessageTemplate.event_type == "ticket_created", MessageTemplate.channel == Channel.WEB
    )
    assert db.session.scalar(pair) is None
    response = client.post("/templates/new", data={"event_type": "ticket_created", "channel": "web", "customer_id": 0})
    assert response.status_code == 302
    made = db.session.scalar(pair)
    assert made.customer_id is None and made.subject and made.body_text
    again = client.post("/templates/new", data={"event_type": "ticket_created", "channel": "web", "customer_id": 0})
    assert again.headers["Location"].endswith(f"/templates/{made.id}")  # no duplicate
    client.post("/logout")
    login_as("operator")
    refused = client.post("/templates/new", data={"event_type": "sla_breach", "channel": "sms", "customer_id": 0})
    assert refused.status_code == 400  # "every customer" is not a choice for an operator
    mine = client.post(
        "/templates/new", data={"event_type": "sla_breach", "channel": "sms", "customer_id": customer.id}
    )
    assert mine.status_code == 302
    assert (
        db.session.scalar(
            sa.select(MessageTemplate.customer_id).where(
                MessageTemplate.event_type == "sla_breach", MessageTemplate.channel == Channel.SMS
            )
        )
        == customer.id
    )


def test_sla_templates_preview_with_a_sample_ticket(client, login_as):
    login_as("operator")
    template = _default("email", event_type="sla_breach")
    data = client.post(
        f"/templates/{template.id}/preview", data={"subject": "{{ ticket.key }} late", "body_text": "{{ link }}"}
    ).get_json()
    assert data["subject"] == "OPS-42 late" and data["body_text"].endswith("/")


def test_html_preview_is_a_page_of_its_own_with_a_policy_of_its_own(client, login_as):
    """The preview frame shows the email's own styles: its page allows inline styles and nothing else (no
    script, no request out), runs sandboxed, and may be framed by this site only."""
    login_as("operator")
    template = _default("email")
    answer = client.post(
        f"/templates/{template.id}/preview.html",
        data={"body_text": "x", "body_html": "<style>p{color:red}</style><p>{{ '<script>' }}</p>"},
    )
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    assert answer.text == "<style>p{color:red}</style><p>&lt;script&gt;</p>"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "style-src 'unsafe-inline'" in policy and "script-src" not in policy
    assert "sandbox" in policy and "frame-ancestors 'self'" in policy
    assert answer.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_viewers_get_no_html_preview(client, login_as):
    login_as("viewer")
    assert client.post(f"/templates/{_default('email').id}/preview.html", data={"body_html": "x"}).status_code == 403
