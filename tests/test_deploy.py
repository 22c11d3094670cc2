"""The deploy files and the README's settings table say what the code does: neither can drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from webapp import config

ROOT = Path(__file__).resolve().parent.parent
# Read by the processes around the app, not by webapp/config.py: the platform, gunicorn, prometheus-client, worker.py.
PROCESS_SETTINGS = {"PORT", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "LOG_LEVEL"}
FROM_ADD_ONS = {"DATABASE_URL", "REDIS_URL", "PORT"}  # app.json's add-ons and the platform set these


class RecordingEnviron(dict):
    """An empty environment that remembers every name the config code asks for."""

    def __init__(self, values: dict | None = None):
        super().__init__(values or {})
        self.asked: list[str] = []

    def get(self, key, default=None):
        self.asked.append(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.append(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.append(key)
        return super().__contains__(key)


def read_config(monkeypatch, tmp_path, values: dict | None = None) -> tuple[dict, list[str]]:
    environ = RecordingEnviron(values)
    monkeypatch.setattr(config, "os", SimpleNamespace(environ=environ))
    built = config.from_environment(str(tmp_path / "instance"))
    return built, environ.asked


def readme_settings() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Settings") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (.*?) \| (.*?) \|$", section, re.M)
    assert rows, "no settings table under '### Settings'"
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "a setting listed twice"
    return {name: default for name, default, _ in rows}


def test_the_settings_table_lists_exactly_what_the_code_reads(monkeypatch, tmp_path):
    _, asked = read_config(monkeypatch, tmp_path)
    _, asked_in_production = read_config(
        monkeypatch,
        tmp_path,
        {"OPSRELAY_ENV": "production", "SECRET_KEY": "s", "ALERT_WEBHOOK_TOKEN": "t", "METRICS_TOKEN": "m"},
    )
    read = set(asked) | set(asked_in_production) | PROCESS_SETTINGS
    assert set(readme_settings()) == read


def _literal(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_settings_table_gives_the_codes_defaults(monkeypatch, tmp_path):
    built, _ = read_config(monkeypatch, tmp_path)
    checked = 0
    for name, default in readme_settings().items():
        literal = re.match(r"^`([^`]*)`", default)
        if name not in built or literal is None:
            continue  # derived (SQLite in instance/, generated secrets) or read outside config.py
        value = built[name]
        if name == "EMAIL_FILE_DIR":
            value = str(Path(value).relative_to(tmp_path))
        assert literal.group(1) == _literal(value), name
        checked += 1
    unset = [name for name, default in readme_settings().items() if default == "—" and name in built]
    assert all(built[name] in (None, False) for name in unset), unset
    assert checked >= 20


def test_app_json_describes_every_setting_the_add_ons_and_the_formation():
    app = json.loads((ROOT / "app.json").read_text())
    assert set(app["env"]) == set(readme_settings()) - FROM_ADD_ONS
    assert all(entry.get("description") for entry in app["env"].values())
    for secret in ("SECRET_KEY", "ALERT_WEBHOOK_TOKEN", "METRICS_TOKEN"):
        assert app["env"][secret]["generator"] == "secret"
    assert app["env"]["OPSRELAY_ENV"]["value"] == "production"
    plans = [addon["plan"].split(":")[0] for addon in app["addons"]]
    assert plans == ["heroku-postgresql", "heroku-redis"]
    assert set(app["formation"]) == {"web", "worker"}


def test_procfile_and_python_version():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert {"web", "worker", "release"} <= set(procfile)
    assert procfile["web"].startswith("gunicorn -c python:webapp.gunicorn_conf ")
    assert procfile["release"] == "flask --app webapp db upgrade"
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.(1[1-9]|[2-9]\d)", version)


@pytest.mark.parametrize("name", sorted(PROCESS_SETTINGS))
def test_process_settings_are_used_where_the_table_says(name):
    used_in = {
        "PORT": ROOT / "Procfile",
        "WEB_CONCURRENCY": ROOT / "Procfile",
        "LOG_LEVEL": ROOT / "worker.py",
        "PROMETHEUS_MULTIPROC_DIR": ROOT / "webapp" / "config.py",
    }[name]
    assert name in used_in.read_text()
