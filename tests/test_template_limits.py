"""Templates cannot exhaust the server: loops, ranges, big strings and numbers, format widths and recursion are
bounded; any render error is a clear message in the preview (never a 500) and fails that one notification with
the `template` code; templates cannot change the data they render; viewers do not run template code."""

from __future__ import annotations

import pytest

from tests.test_email_delivery import _smtp_servers, certificate, email_for, smtp, smtp_config  # noqa: F401
from webapp import outbox
from webapp.extensions import db
from webapp.models import Channel, MessageTemplate
from webapp.models import NotificationStatus as S
from webapp.services.messages import templates

COSTLY = {
    "nested loops": "{% for a in range(9999) %}{% for b in range(9999) %}{{ a }}{% endfor %}{% endfor %}",
    "big range": "{% for a in range(10**9) %}{% endfor %}",
    "huge power": "{{ 9**9**9 }}",
    "float power": "{{ 1.5 ** 100000 }}",
    "big product": "{{ 123456789 ** 20 * 123456789 ** 20 }}",
    "long string": "{{ 'x' * 10**9 }}",
    "long list": "{{ [0] * 10**9 }}",
    "wide filter": "{{ 'x'|center(10**9) }}",
    "wide method": "{{ 'x'.ljust(10**9) }}",
    "wide format": "{{ '{:>1000000000}'.format(1) }}",
    "wide percent": "{{ '%1000000000s' % 'x' }}",
    "star percent": "{{ '%*s' % (10**9, 'x') }}",
    "format filter": "{{ '%*s'|format(10**9, 'x') }}",
    "big output": "{% for a in range(5000) %}{{ 'y' * 50 }}{% endfor %}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
    "division by zero": "{{ 1/0 }}",
    "int of text": "{{ '12a'|int + (None ~ 1)|int // 0 }}",
    "mutation": "{{ labels.pop('alertname') }}",
    "list mutation": "{% set l = [1] %}{{ l.append(2) }}",
}


@pytest.mark.parametrize("name", list(COSTLY))
def test_a_costly_or_broken_template_is_a_clear_error(app, name):
    context = {"labels": {"alertname": "DiskFull"}}
    with pytest.raises(templates.TemplateRenderError) as caught:
        templates.render_text(COSTLY[name], context)
    assert str(caught.value).startswith(("template too costly:", "template error:"))
    assert context["labels"] == {"alertname": "DiskFull"}  # nothing rendered can change the data


def test_ordinary_templates_still_render(app):
    context = {"labels": {"a": "1", "b": "2"}, "n": 123456, "event": {"title": "Disk"}}
    source = (
        "{{ event.title|upper }} {% for k, v in labels|dictsort %}{{ k }}={{ v }}{% if not loop.last %},"
        "{% endif %}{% endfor %} {{ '{:,}'.format(n) }} {{ '%d ms' % n }} {{ 2**64 }} {{ 'ab' * 3 }}"
        " {{ range(3)|list }}"
    )
    assert templates.render_text(source, context) == (
        "DISK a=1,b=2 123,456 123456 ms 18446744073709551616 ababab [0, 1, 2]"
    )


def _default(channel: str) -> MessageTemplate:
    template = db.session.scalars(
        db.select(MessageTemplate).where(
            MessageTemplate.customer_id.is_(None),
            MessageTemplate.event_type == "alert",
            MessageTemplate.channel == Channel(channel),
        )
    ).first()
    assert template is not None
    return template


@pytest.mark.parametrize("name", ["nested loops", "division by zero", "long string", "recursion", "mutation"])
def test_the_preview_answers_each_with_its_message_never_a_500(client, login_as, name):
    login_as("operator")
    template = _default("email")
    answer = client.post(
        f"/templates/{template.id}/preview",
        data={"subject": "ok", "body_text": COSTLY[name], "body_html": COSTLY[name]},
    )
    assert answer.status_code == 200
    errors = answer.get_json()["errors"]
    for field in ("body_text", "body_html"):
        assert errors[field].startswith(("template too costly:", "template error:")), errors
    assert "subject" not in errors


def test_saving_a_costly_template_is_refused_beside_the_field(client, login_as):
    login_as("admin")
    template = _default("sms")
    answer = client.post(f"/templates/{template.id}", data={"body_text": COSTLY["nested loops"]})
    assert answer.status_code == 400 and "template too costly" in answer.text
    db.session.refresh(template)
    assert "range" not in template.body_text


def test_viewers_cannot_run_the_preview(client, login_as):
    login_as("viewer")
    template = _default("sms")
    assert client.post(f"/templates/{template.id}/preview", data={"body_text": "{{ 1 }}"}).status_code == 403
    page = client.get(f"/templates/{template.id}").text
    assert "template_preview.js" not in page and "data-preview-url" not in page


def test_a_costly_template_fails_that_email_with_the_template_code(smtp, make_customer, drain):  # noqa: F811
    acme, globex = make_customer("Acme"), make_customer("Globex")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    smtp_config(globex, smtp["starttls"], "starttls", from_email="noc@globex.example")
    db.session.add(
        MessageTemplate(
            customer_id=acme.id,
            name="acme_failed",
            event_type="job_failed",
            channel=Channel.EMAIL,
            subject="ok",
            body_text=COSTLY["nested loops"],
        )
    )
    db.session.commit()
    costly, fine = email_for(acme, "ops@acme.example"), email_for(globex, "ops@globex.example")
    outbox.deliver([costly.id, fine.id])
    db.session.commit()
    drain()
    assert costly.status == S.FAILED and costly.error_code == "template"
    assert "template too costly: more than" in costly.error_message
    assert fine.status == S.SENT
