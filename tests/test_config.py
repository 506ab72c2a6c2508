"""The TOML config: validation with key paths, unknown keys refused, env overrides, the default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paperdigest import config
from paperdigest.errors import ConfigError

GOOD = """
[store]
url = "sqlite:///{db}"

[[sources]]
name = "inbox"
kind = "directory"
path = "/var/lib/paperdigest/inbox"
every = "15m"

[[sources]]
name = "hf-daily"
kind = "url"
url = "https://huggingface.co/api/daily_papers"
cron = "*/30 * * * *"

[scoring]
upvotes = 1.5

[topics.agents]
keywords = ["agent", "web agent", "GUI", "computer use"]
exclude = ["survey"]

[topics.robotics]
keywords = ["robot"]

[mail]
from = "Paper Digest <digest@example.org>"
transport = "smtp"
host = "smtp.example.org"
port = 587
security = "starttls"
username = "digest"
password_file = "{secret}"

[[subscribers]]
email = "ada@example.org"
topics = ["agents"]
format = "both"
cron = "0 7 * * *"
timezone = "Europe/Berlin"
max_papers = 20
min_score = 0.5

[[subscribers]]
email = "grace@example.org"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paperdigest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_design_example_loads(tmp_path: Path) -> None:
    secret = tmp_path / "smtp"
    secret.write_text("hunter2\n")
    settings = config.load(write(tmp_path, GOOD.format(db=tmp_path / "x.db", secret=secret)))
    assert settings.scoring.upvotes == 1.5 and settings.scoring.title == 3.0
    assert settings.topics["agents"].exclude == ["survey"]
    assert settings.mail.from_ == "Paper Digest <digest@example.org>"
    assert [s.email for s in settings.subscribers] == ["ada@example.org", "grace@example.org"]
    assert settings.subscribers[1].topics == [] and settings.subscribers[1].format == "both"
    assert config.smtp_password(settings.mail) == "hunter2"


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (
            {"subscribers": [{"email": "a@x.org"}, {"email": "b@x.org"}, {"email": "c@x.org", "cron": "0 7 * *"}]},
            "subscribers[2].cron: expected five cron fields",
        ),
        ({"subscribers": [{"email": "a@x.org", "cron": "61 7 * * *"}]}, "subscribers[0].cron:"),
        ({"subscribers": [{"email": "a@x.org", "timezone": "Mars/Olympus"}]}, "subscribers[0].timezone: unknown"),
        ({"subscribers": [{"email": "not-an-address"}]}, "subscribers[0].email:"),
        ({"subscribers": [{"email": "a@x.org", "topics": ["nope"]}]}, "subscribers[0].topics: unknown topic 'nope'"),
        ({"subscribers": [{"email": "a@x.org", "max_papers": 0}]}, "subscribers[0].max_papers:"),
        ({"subscribers": [{"email": "a@x.org", "colour": "red"}]}, "subscribers[0].colour: unknown key"),
        ({"subscribers": [{"email": "a@x.org"}, {"email": "A@x.org"}]}, "listed twice"),
        ({"mail": {"transport": "pigeon"}}, "mail.transport:"),
        ({"mail": {"port": 70000}}, "mail.port:"),
        ({"mail": {"sender": "x"}}, "mail.sender: unknown key"),
        ({"topics": {"agents": {"keywords": []}}}, "topics.agents.keywords:"),
        ({"topics": {"agents": {"keywords": ["a"], "include": ["b"]}}}, "topics.agents.include: unknown key"),
        ({"sources": [{"name": "x", "kind": "directory"}]}, "sources[0]: a directory source needs 'path'"),
        ({"sources": [{"name": "x", "kind": "url", "url": "file:///etc/passwd"}]}, "sources[0]: a url source"),
        ({"sources": [{"name": "x", "kind": "directory", "path": "/x", "every": "soon"}]}, "sources[0].every:"),
        ({"sources": [{"name": "x", "kind": "ftp", "path": "/x"}]}, "sources[0].kind:"),
        ({"scoring": {"title": -1}}, "scoring.title:"),
        ({"stor": {"url": "x"}}, "stor: unknown key"),
        ({"origin": "x"}, "origin: unknown key"),
    ],
)
def test_errors_name_the_key_path(mutation: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.validate(mutation, "c.toml")
    assert str(info.value).startswith("c.toml: ")
    assert message in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[store\nurl = 1"))
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml")


def test_cli_refuses_a_bad_config_with_exit_2(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, '[[subscribers]]\nemail = "a@x.org"\ncron = "nope"\n')
    result = cli("--config", str(path), "digest")
    assert result.code == 2
    assert "subscribers[0].cron" in result.err and str(path) in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_environment_overrides(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f'[store]\nurl = "sqlite:///{tmp_path / "from-config.db"}"\n')
    monkeypatch.setenv("PAPERDIGEST_CONFIG", str(path))
    assert cli("status").code == 0
    assert (tmp_path / "from-config.db").exists()
    monkeypatch.setenv("PAPERDIGEST_DB", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert cli("status").code == 0
    assert (tmp_path / "from-env.db").exists()
    mail = config.MailSettings(password_file=tmp_path / "absent")
    monkeypatch.setenv("PAPERDIGEST_SMTP_PASSWORD", "from-env")
    assert config.smtp_password(mail) == "from-env"


def test_unreadable_password_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mail\.password_file"):
        config.smtp_password(config.MailSettings(password_file=tmp_path / "absent"))


def test_embedded_default(tmp_path: Path) -> None:
    settings = config.embedded_default({"STATE_DIRECTORY": str(tmp_path / "state")})
    assert settings.store.url is None
    assert settings.mail.transport == "file" and settings.mail.outbox_dir == tmp_path / "state" / "outbox"
    (subscriber,) = settings.subscribers
    assert sorted(subscriber.topics) == sorted(settings.topics)  # a demo subscriber of every topic
    (source,) = settings.sources
    assert source.kind == "directory" and source.move is False
    assert source.path is not None and (source.path / "004_d0e4e6143df38525.txt").exists()


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.validate({"mail": {"password_file": "/x", "port": "hunter2-secret"}}, "c.toml")
    assert "mail.port" in str(info.value)
    assert "hunter2" not in str(info.value)
