"""Two workers, each with its own app, engine and connections, race over the same notifications (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import twilio_settings
from webapp import jobs
from webapp.extensions import db
from webapp.models import Channel, Notification
from webapp.models import NotificationStatus as S


def test_two_workers_racing_send_each_notification_once(app, make_app, make_user, twilio):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the race is proven on PostgreSQL (run with DATABASE_URL)")
    user = make_user("admin")
    rows = [
        Notification(user_id=user.id, channel=Channel.SMS, recipient=f"+1415555{i:04d}", body=f"m{i}", status=S.QUEUED)
        for i in range(60)
    ]
    db.session.add_all(rows)
    db.session.commit()
    ids = [row.id for row in rows]
    workers = [make_app(**twilio_settings(twilio.base_url)) for _ in range(2)]
    start = threading.Barrier(len(workers))
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def work(index: int, worker_app) -> None:
        try:
            with worker_app.app_context():
                start.wait()
                results[index] = [jobs.deliver(notification_id) for notification_id in ids]
                db.session.remove()
                db.engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(m["To"] for m in twilio.received) == sorted(row.recipient for row in rows)  # each once
    sent = [r for outcome in results.values() for r in outcome if r == "sent"]
    assert len(sent) == len(ids)
    db.session.expire_all()
    assert {(n.status, n.attempts) for n in db.session.scalars(db.select(Notification))} == {(S.SENT, 1)}
