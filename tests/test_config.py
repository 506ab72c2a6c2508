"""The TOML config: validation with key paths, unknown keys refused, env overrides, the default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from paperdigest import config
from paperdigest.errors import ConfigError
from paperdigest.service.scheduler import Service

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
        ({"subscribers": [{"email": "a@x.org", "timezone": "x" * 300}]}, "subscribers[0].timezone: unknown"),
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


# Which store is chosen (config, then environment): told by which SQLite file appears.
def test_environment_overrides(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f'[store]\nurl = "sqlite:///{tmp_path / "from-config.db"}"\n')
    monkeypatch.setenv("PAPERDIGEST_CONFIG", str(path))
    assert cli("db", "upgrade").code == 0  # creates the store where the URL says (`status` creates none)
    assert (tmp_path / "from-config.db").exists()
    monkeypatch.setenv("PAPERDIGEST_DB", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert cli("db", "upgrade").code == 0
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


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        ({"subscribers": [{"email": "a@x.org", "max_papers": "20"}]}, "subscribers[0].max_papers:"),
        ({"digest": {"send_empty": "yes"}}, "digest.send_empty:"),
        ({"scoring": {"title": "3"}}, "scoring.title:"),
        ({"mail": {"port": "587"}}, "mail.port:"),
        ({"sources": [{"name": "x", "kind": "directory", "path": "/x", "move": "no"}]}, "sources[0].move:"),
        ({"mail": {"from": "Paper Digest"}}, "mail.from: expected one mail address"),
        ({"mail": {"from": "a@x.org, b@x.org"}}, "mail.from: expected one mail address"),
        ({"mail": {"from": "Digest <dîgest@x.org>"}}, "mail.from: expected one mail address"),
        ({"digest": {"templates": "/nonexistent/templates"}}, "digest.templates: /nonexistent/templates is not a dir"),
        ({"mail": {"ca_file": "/nonexistent/ca.pem"}}, "mail.ca_file: cannot read /nonexistent/ca.pem"),
    ],
)
def test_strict_types_and_checks_made_at_load(mutation: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.validate(mutation, "c.toml")
    assert message in str(info.value)


def test_numbers_may_be_written_as_whole_numbers() -> None:
    settings = config.validate({"scoring": {"title": 3, "upvotes": 1.5}, "digest": {"rising_factor": 3}}, "c.toml")
    assert settings.scoring.title == 3.0 and settings.digest.rising_factor == 3.0


def smtp_config(tmp_path: Path, password_file: str | None, username: str | None = "digest") -> Path:
    lines = [
        '[mail]\nfrom = "Digest <d@example.org>"\ntransport = "smtp"\nhost = "127.0.0.1"\nport = 9\n',
        f'username = "{username}"\n' if username else "",
        f'password_file = "{password_file}"\n' if password_file else "",
        '[[subscribers]]\nemail = "ada@example.org"\n',
    ]
    return write(tmp_path, "".join(lines))


@pytest.mark.parametrize("command", [["send"], ["send", "--dry-run"], ["run", "--once"]])
def test_a_config_that_cannot_send_is_refused_by_the_commands_that_send(
    cli: Any, tmp_path: Path, db_url: str, command: list[str]
) -> None:
    path = smtp_config(tmp_path, str(tmp_path / "missing-secret"))
    result = cli("--config", str(path), "--db", db_url, *command)
    assert result.code == 2
    assert str(path) in result.err and "mail.password_file" in result.err and "missing-secret" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_status_says_a_config_cannot_send_and_other_commands_still_work(
    cli: Any, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = smtp_config(tmp_path, str(tmp_path / "missing-secret"))
    assert cli("--db", db_url, "db", "upgrade").code == 0  # `status` looks at a store, and creates none
    status = cli("--config", str(path), "--db", db_url, "status", "--json")
    assert status.code == 1
    mail = status.json_lines()[0]["mail"]
    assert mail["can_send"] is False and "mail.password_file" in mail["problems"][0]
    text = cli("--config", str(path), "--db", db_url, "status")
    assert "cannot send: mail.password_file" in text.out
    assert cli("--config", str(path), "--db", db_url, "papers").code == 0  # a systemd credential lives in the unit
    monkeypatch.setenv("PAPERDIGEST_SMTP_PASSWORD", "from-env")  # the environment wins over the file
    assert cli("--config", str(path), "--db", db_url, "status").code == 0


def test_a_username_without_any_password_cannot_send(cli: Any, tmp_path: Path, db_url: str) -> None:
    path = smtp_config(tmp_path, None)
    result = cli("--config", str(path), "--db", db_url, "send")
    assert result.code == 2 and "mail.username is set but there is no password" in result.err
    anonymous = cli("--config", str(smtp_config(tmp_path, None, username=None)), "--db", db_url, "send")
    assert anonymous.code == 0 and "queued ada@example.org" in anonymous.out  # no login: no password needed


def test_a_reload_to_a_config_that_cannot_send_keeps_the_running_one(tmp_path: Path, db_url: str) -> None:

    secret = tmp_path / "secret"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    path = smtp_config(tmp_path, str(secret))
    service = Service(config.load(path), db_url, str(path))
    secret.unlink()
    path.write_text(path.read_text(encoding="utf-8").replace('host = "127.0.0.1"', 'host = "changed.example"'))
    service.reload()
    assert service.settings.mail.host == "127.0.0.1"


def test_world_readable_secrets_are_warned_about(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("pw\n")
    secret.chmod(0o644)
    path = write(
        tmp_path,
        '[store]\nurl = "postgresql+psycopg://digest:s3cret@db.example/papers"\n'
        f'[mail]\ntransport = "smtp"\npassword_file = "{secret}"\n',
    )
    path.chmod(0o644)
    warnings = config.exposure_warnings(config.load(path))
    assert len(warnings) == 2 and str(path) in warnings[0] and str(secret) in warnings[1]
    assert all("s3cret" not in w for w in warnings)
    path.chmod(0o600)
    secret.chmod(0o600)
    assert config.exposure_warnings(config.load(path)) == []


def test_a_path_with_a_line_separator_is_named_on_one_line() -> None:
    """Found by fuzzing: U+0085 in a path split the error over two lines."""
    with pytest.raises(ConfigError) as info:
        config.validate({"digest": {"templates": "\x85"}}, "c.toml")
    assert len(str(info.value).splitlines()) == 1 and "digest.templates" in str(info.value)


@pytest.mark.parametrize(
    ("topic", "where", "reason"),
    [
        # Keywords match folded words: "Agents" is "agent" again, and the hit would count twice.
        ({"keywords": ["agent", "Agents"]}, "topics.a.keywords", "'Agents' repeats 'agent'"),
        ({"keywords": ["web agent", "Web  Agents"]}, "topics.a.keywords", "'Web  Agents' repeats 'web agent'"),
        ({"keywords": ["agent", "!!!"]}, "topics.a.keywords", "'!!!' has no word to match"),
        ({"keywords": ["  "]}, "topics.a.keywords", "'  ' has no word to match"),
        ({"keywords": ["agent"], "exclude": ["survey", "SURVEYS"]}, "topics.a.exclude", "'SURVEYS' repeats 'survey'"),
    ],
)
def test_keywords_that_never_match_or_repeat_are_refused(topic: dict[str, Any], where: str, reason: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config.validate({"topics": {"a": topic}}, "c.toml")
    assert f"c.toml: {where}: {reason}" in str(refused.value) and "\n" not in str(refused.value)


def test_keywords_that_differ_as_words_are_kept() -> None:
    settings = config.validate({"topics": {"a": {"keywords": ["agent", "agentic", "web agent", "reagent"]}}}, "c.toml")
    assert settings.topics["a"].keywords == ["agent", "agentic", "web agent", "reagent"]


@pytest.mark.parametrize(
    ("host", "security", "username", "refused"),
    [
        ("smtp.example.org", "none", "digest", True),  # the password would cross the network in clear
        ("192.0.2.7", "none", "digest", True),
        ("smtp.example.org", "starttls", "digest", False),
        ("smtp.example.org", "ssl", "digest", False),
        ("smtp.example.org", "none", None, False),  # no AUTH, no password sent
        ("127.0.0.1", "none", "digest", False),  # a relay on this host
        ("127.0.0.53", "none", "digest", False),
        ("::1", "none", "digest", False),
        ("localhost", "none", "digest", False),
    ],
)
def test_smtp_auth_without_tls_is_refused_unless_the_server_is_on_this_host(
    host: str, security: str, username: str | None, refused: bool
) -> None:
    mail = {"transport": "smtp", "host": host, "security": security} | ({"username": username} if username else {})
    if refused:
        with pytest.raises(ConfigError, match=r"c\.toml: mail: .*unencrypted to " + re.escape(host)):
            config.validate({"mail": mail}, "c.toml")
    else:
        assert config.validate({"mail": mail}, "c.toml").mail.host == host
