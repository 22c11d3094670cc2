"""Phone numbers: E.164 normalisation, invalid numbers refused, primary, labels, SMS verification, opt-out."""

from __future__ import annotations

import re

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, PhoneNumber


def _phones(user_id: int) -> list[PhoneNumber]:
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(PhoneNumber).where(PhoneNumber.user_id == user_id).order_by(PhoneNumber.id))
    )


def test_a_national_number_is_stored_in_e164_and_becomes_primary(client, login_as, make_user):
    login_as("admin")
    kim = make_user("viewer")
    response = client.post(f"/users/{kim.id}/phones", data={"number": "(415) 555-0123", "label": "Work"})
    assert response.status_code == 302
    [phone] = _phones(kim.id)
    assert (phone.number, phone.label, phone.is_primary) == ("+14155550123", "Work", True)
    assert "+14155550123" in client.get(f"/users/{kim.id}/phones").text


def test_an_invalid_number_is_refused_with_a_message_next_to_the_field(client, login_as, make_user):
    login_as("admin")
    kim = make_user("viewer")
    response = client.post(f"/users/{kim.id}/phones", data={"number": "12345", "label": "Home"})
    assert response.status_code == 400
    assert "is not a valid phone number for its country" in response.text
    assert 'value="12345"' in response.text and "is-invalid" in response.text
    assert _phones(kim.id) == []
    garbage = client.post(f"/users/{kim.id}/phones", data={"number": "call me", "label": "Home"})
    assert garbage.status_code == 400 and "is not a phone number" in garbage.text


def test_the_same_number_twice_is_refused(client, login_as):
    me = login_as("viewer", phone="+14155550123")
    response = client.post(f"/users/{me.id}/phones", data={"number": "+1 415 555 0123", "label": "Again"})
    assert response.status_code == 400 and "This user already has +14155550123." in response.text


def test_make_primary_and_label(client, login_as):
    me = login_as("operator", phone="+14155550123")
    client.post(f"/users/{me.id}/phones", data={"number": "+44 20 7946 0958", "label": "London"})
    first, second = _phones(me.id)
    assert client.post(f"/phones/{second.id}/primary").status_code == 302
    first, second = _phones(me.id)
    assert (first.is_primary, second.is_primary) == (False, True)
    client.post(f"/phones/{first.id}/label", data={"label": "Old mobile"})
    assert _phones(me.id)[0].label == "Old mobile"


def test_verification_code_by_sms(client, login_as, drain, twilio):
    me = login_as("viewer", phone="+14155550123")
    [phone] = _phones(me.id)
    page = client.post(f"/phones/{phone.id}/send-code", follow_redirects=True)
    assert "A code is on its way" in page.text and "6-digit code" in page.text
    again = client.post(f"/phones/{phone.id}/send-code", follow_redirects=True)
    assert "less than a minute ago" in again.text  # one SMS, not two
    sms = db.session.scalar(sa.select(Notification).where(Notification.channel == Channel.SMS))
    assert sms.event_id is None and sms.user_id == me.id and sms.recipient == "+14155550123"
    drain()
    assert db.session.get(Notification, sms.id).status == NotificationStatus.SENT
    [message] = twilio.received
    code = re.search(r"\b(\d{6})\b", message["Body"]).group(1)
    [phone] = _phones(me.id)
    assert code not in (phone.verify_code_hash or "") and phone.verify_code_hash  # only a hash is kept

    wrong = "000000" if code != "000000" else "111111"
    refused = client.post(f"/phones/{phone.id}/verify", data={"code": wrong})
    assert refused.status_code == 400 and "That code is not right." in refused.text
    assert _phones(me.id)[0].verified_at is None and _phones(me.id)[0].verify_attempts == 1
    assert client.post(f"/phones/{phone.id}/verify", data={"code": code}).status_code == 302
    [phone] = _phones(me.id)
    assert phone.verified_at is not None and phone.verify_code_hash is None
    assert "verified" in client.get(f"/users/{me.id}/phones").text


def test_an_expired_code_is_refused(app, client, login_as, drain, twilio):
    app.config["PHONE_CODE_TTL_SECONDS"] = -1
    me = login_as("viewer", phone="+14155550123")
    [phone] = _phones(me.id)
    client.post(f"/phones/{phone.id}/send-code")
    drain()
    code = re.search(r"\b(\d{6})\b", twilio.received[0]["Body"]).group(1)
    response = client.post(f"/phones/{phone.id}/verify", data={"code": code})
    assert response.status_code == 400 and "expired" in response.text
    assert _phones(me.id)[0].verified_at is None


def test_opt_out_records_when_and_how(client, login_as, make_user):
    admin = login_as("admin")
    kim = make_user("viewer", phone="+14155550123")
    [phone] = _phones(kim.id)
    client.post(f"/phones/{phone.id}/opt-out")
    [phone] = _phones(kim.id)
    assert phone.opted_out and phone.opted_out_at is not None and admin.email in phone.opted_out_via
    page = client.get(f"/users/{kim.id}/phones").text
    assert "opted out" in page and "via admin page" in page
    assert client.post(f"/phones/{phone.id}/send-code").status_code == 302  # refused: no SMS to an opted-out number
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


def test_someone_elses_numbers_need_an_admin(client, login_as, make_user):
    kim = make_user("viewer", phone="+14155550123")
    [phone] = _phones(kim.id)
    login_as("operator")
    assert client.get(f"/users/{kim.id}/phones").status_code == 403
    assert client.post(f"/users/{kim.id}/phones", data={"number": "+14155550199"}).status_code == 403
    assert client.post(f"/phones/{phone.id}/remove").status_code == 403
    assert client.post(f"/phones/{phone.id}/opt-out").status_code == 403
    assert [p.number for p in _phones(kim.id)] == ["+14155550123"] and not _phones(kim.id)[0].opted_out
