"""The compiled templates kept under the state folder (render._bytecode_cache, issue 13): a later
process loads them instead of compiling, an edited template compiles afresh, and a cache that
cannot be read or written never fails a render. Real files in the test's own state folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2

from paperdigest.digest import render

BUNDLED = ("digest.txt.j2", "digest.html.j2")


def fresh(template_dir: Path | None = None) -> tuple[jinja2.Environment, list[str]]:
    """A new environment, as a new process makes (environment() is cached per process), and the
    names of the templates it compiled."""
    env = render.environment.__wrapped__(template_dir)
    compiled: list[str] = []
    compile_ = env.compile

    def counting(source: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(name))
        return compile_(source, name, *args, **kwargs)

    env.compile = counting  # type: ignore[method-assign]
    return env, compiled


def cache_files(state: Path) -> list[Path]:
    return sorted((state / "cache" / "templates").glob("*/__jinja2_*.cache"))


def user_templates(tmp_path: Path, text: str = "{{ x }} digest\n") -> Path:
    """A digest.templates folder of the user's, with a text template of `text`."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text(text, encoding="utf-8")
    return folder


def test_a_later_environment_loads_the_bundled_templates_compiled(tmp_path: Path) -> None:
    first, compiled = fresh()
    sources = {name: first.get_template(name) for name in BUNDLED}
    assert compiled == list(BUNDLED)
    files = cache_files(tmp_path / "state")
    assert len(files) == 2 and all(f.stat().st_size > 1000 for f in files)
    assert oct(files[0].parent.stat().st_mode & 0o777) == "0o700"  # under the private state folder
    second, compiled = fresh()
    loaded = {name: second.get_template(name) for name in BUNDLED}
    assert compiled == []  # read back, not compiled
    for name in BUNDLED:  # the same code: the same module-level names and blocks
        assert loaded[name].blocks.keys() == sources[name].blocks.keys()
        assert loaded[name].root_render_func.__code__.co_code == sources[name].root_render_func.__code__.co_code


def test_an_edited_template_compiles_afresh(tmp_path: Path) -> None:
    folder = user_templates(tmp_path, "{{ x }} first\n")
    template = folder / "digest.txt.j2"
    env, compiled = fresh(folder)
    assert env.get_template("digest.txt.j2").render(x=1) == "1 first\n"
    env, compiled = fresh(folder)
    assert env.get_template("digest.txt.j2").render(x=2) == "2 first\n" and compiled == []
    template.write_text("{{ x }} second, edited\n", encoding="utf-8")
    env, compiled = fresh(folder)
    assert env.get_template("digest.txt.j2").render(x=3) == "3 second, edited\n"
    assert compiled == ["digest.txt.j2"]


def test_a_damaged_cache_file_is_compiled_afresh_and_written_again(tmp_path: Path) -> None:
    folder = user_templates(tmp_path)
    env, _ = fresh(folder)
    assert env.get_template("digest.txt.j2").render(x=0) == "0 digest\n"  # compiled: written to the cache
    (written,) = cache_files(tmp_path / "state")
    whole = written.read_bytes()
    for index, damage in enumerate((whole[:40], b"", os.urandom(200), whole[:-8])):
        written.write_bytes(damage)
        env, compiled = fresh(folder)
        assert env.get_template("digest.txt.j2").render(x=index) == f"{index} digest\n"
        assert compiled == ["digest.txt.j2"]
        assert written.read_bytes() == whole  # kept again, whole


def test_a_state_folder_that_cannot_hold_the_cache_compiles_each_time(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "cache").write_text("a file where the folder would be", encoding="utf-8")
    folder = user_templates(tmp_path)
    for x in (1, 2):
        env, compiled = fresh(folder)
        assert env.bytecode_cache is None
        assert env.get_template("digest.txt.j2").render(x=x) == f"{x} digest\n"
        assert compiled == ["digest.txt.j2"]


def test_a_cache_folder_gone_meanwhile_fails_no_render(tmp_path: Path) -> None:
    folder = user_templates(tmp_path)
    env, compiled = fresh(folder)
    assert env.bytecode_cache is not None
    cache = tmp_path / "state" / "cache"
    cache.rename(tmp_path / "elsewhere")  # another process cleared it: nothing can be written there now
    assert env.get_template("digest.txt.j2").render(x=5) == "5 digest\n" and compiled == ["digest.txt.j2"]
    assert not cache.exists()
