"""The signing examples of docs/integrations.md, run as written against a live OpsRelay."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import sqlalchemy as sa

from tests.test_browser import live_server  # noqa: F401  (fixture)
from webapp.extensions import db
from webapp.models import Event
from webapp.services.integrations import webhook_sources

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "integrations.md").read_text()
SECRET = "automation-secret-for-tests-0123456789"


def block(language: str, after: str) -> str:
    return re.search(rf"{re.escape(after)}.*?```{language}\n(.*?)\n```", GUIDE, re.S).group(1)


def test_the_python_and_curl_signing_examples_are_accepted(live_server, customer):  # noqa: F811
    webhook_sources.create(name="automation", kind="generic", customer=customer, secret=SECRET)
    db.session.commit()
    python = block("python", "Python (standard library only)").replace("https://opsrelay.example.com", live_server.url)
    exec(compile(python, "docs/integrations.md", "exec"), {"SECRET": SECRET})  # noqa: S102 - the guide's own code
    curl = block("sh", "curl:").replace("https://opsrelay.example.com", live_server.url)
    result = subprocess.run(  # noqa: S603
        ["bash", "-c", curl],  # noqa: S607
        env={"SOURCE_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    db.session.expire_all()
    titles = db.session.scalars(sa.select(Event.title).where(Event.source == "generic")).all()
    assert titles == ["Nightly backup failed", "Nightly backup failed"]
