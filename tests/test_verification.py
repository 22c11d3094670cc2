"""Phone verification proves possession: the code reaches the number only (never the delivery log, the inbox or
the API), guesses are counted atomically, and codes expire."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, PhoneNumber, Role, utcnow
from webapp.services.integrations import api_keys
from webapp.services.people import phones

HIDDEN = "verification code (hidden)"


def _phone(user_id: int) -> PhoneNumber:
    db.session.expire_all()
    return db.session.scalars(sa.select(PhoneNumber).where(PhoneNumber.user_id == user_id)).one()


def _code(twilio) -> str:
    return re.search(r"\b(\d{6})\b", twilio.received[-1]["Body"]).group(1)


def test_the_requester_cannot_read_the_code_anywhere(client, login_as, make_user, drain, twilio):
    me = login_as("operator", phone="+14155550123")
    phone = _phone(me.id)
    client.post(f"/phones/{phone.id}/send-code")
    drain()
    sms = db.session.scalars(sa.select(Notification).where(Notification.channel == Channel.SMS)).one()
    assert sms.status == NotificationStatus.SENT
    code = _code(twilio)  # what the phone's owner reads on the phone
    assert code not in sms.body and sms.body == HIDDEN

    shown = [
        client.get("/deliveries").text,
        client.get(f"/deliveries/{sms.id}").text,
        client.get(f"/deliveries/{sms.id}/status").text,
        client.get("/inbox").text,
    ]
    admin = make_user(Role.ADMIN, customers=[])
    _, plain = api_keys.create_key(name="global", scopes=["read"], customer=None, expires_days=None, created_by=admin)
    db.session.commit()
    headers = {"X-API-Key": plain}
    shown.append(client.get("/api/v1/notifications", headers=headers).text)
    shown.append(client.get(f"/api/v1/notifications/{sms.id}", headers=headers).text)
    for text in shown:
        assert f"is {code}" not in text and f"code is {code}" not in text
    assert HIDDEN in shown[1] and HIDDEN in shown[-1]


def test_concurrent_guesses_evaluate_at_most_five(app, make_user, drain, twilio):
    owner = make_user("viewer", phone="+14155550123")
    phone = _phone(owner.id)
    phones.start_verification(phone, by=owner)
    db.session.commit()
    drain()
    code = _code(twilio)
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 41)]
    phone_id = phone.id  # read here: an expired attribute of the test's session, loaded by 8 threads at once, races
    barrier = threading.Barrier(8)
    answers: list[str] = []
    lock = threading.Lock()

    def guess(batch: list[str]) -> None:
        with app.app_context():
            barrier.wait()
            for attempt in batch:
                row = db.session.get(PhoneNumber, phone_id)
                try:
                    phones.confirm(row, attempt, by=owner)
                    message = "verified"
                except phones.PhoneError as exc:
                    message = str(exc)
                except Exception as exc:  # shown in the assertion below, not lost in a thread
                    db.session.rollback()
                    message = f"commit failed: {exc!r}"
                try:
                    db.session.commit()
                except Exception as exc:  # shown in the assertion below, not lost in a thread
                    db.session.rollback()
                    message = f"commit failed: {exc!r}"
                with lock:
                    answers.append(message)
            db.session.remove()

    threads = [threading.Thread(target=guess, args=(wrong[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 40, answers
    assert not [a for a in answers if a.startswith("commit failed")], answers
    assert answers.count("That code is not right.") <= phones.MAX_CODE_ATTEMPTS
    assert answers.count("Too many wrong codes; send a new one.") >= 40 - phones.MAX_CODE_ATTEMPTS
    assert _phone(owner.id).verify_attempts == phones.MAX_CODE_ATTEMPTS
    # the right code, after the tries ran out, no longer verifies
    try:
        phones.confirm(_phone(owner.id), code, by=owner)
    except phones.PhoneError as exc:
        assert "Too many" in str(exc)
    db.session.commit()
    assert _phone(owner.id).verified_at is None


def test_a_code_expires(app, client, login_as, drain, twilio):
    me = login_as("viewer", phone="+14155550123")
    phone = _phone(me.id)
    client.post(f"/phones/{phone.id}/send-code")
    drain()
    code = _code(twilio)
    row = _phone(me.id)
    row.verify_expires_at = utcnow() - timedelta(seconds=1)  # ten minutes later
    db.session.commit()
    answer = client.post(f"/phones/{phone.id}/verify", data={"code": code})
    assert answer.status_code == 400 and "expired" in answer.text
    assert _phone(me.id).verified_at is None
