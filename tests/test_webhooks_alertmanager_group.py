"""Alertmanager's group fields kept on every event for links back; truncatedAlerts noted in the answer."""

from __future__ import annotations

import json

from tests.conftest import load_fixture
from webapp.extensions import db
from webapp.models import Event

URL = "/api/v1/webhooks/alertmanager"
AUTH = {"Authorization": "Bearer test-alert-token"}


def test_group_labels_links_and_truncation_are_kept(client):
    body = json.loads(load_fixture("webhooks/alertmanager_mixed.json"))
    body["truncatedAlerts"] = 7
    response = client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json["truncated_alerts"] == 7
    events = db.session.scalars(db.select(Event).order_by(Event.id)).all()
    assert len(events) == 3
    for event in events:
        assert event.data["groupLabels"] == {"service": "api"}
        assert event.data["externalURL"] == "http://alertmanager.example.com:9093"
        assert event.data["truncatedAlerts"] == 7
        assert event.data["groupStatus"] == "firing"
        assert event.data["generatorURL"].startswith("http://prometheus.example.com:9090/graph")
    assert [str(e.status) for e in events] == ["firing", "firing", "resolved"]


def test_no_truncation_no_note(client):
    response = client.post(
        URL, data=load_fixture("webhooks/alertmanager_mixed.json"), headers=AUTH, content_type="application/json"
    )
    assert "truncated_alerts" not in response.json
