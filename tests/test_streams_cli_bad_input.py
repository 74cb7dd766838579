"""Every mistake a user can fix on the command line is one line on stderr and a non-zero exit,
never a traceback: a malformed argument, an unknown log level from the flag or the environment,
an unknown agency, a broken settings file, an unreachable or malformed index database URL (its
password never shown), a path that cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli_run import run_gdx


@pytest.mark.parametrize(
    ("args", "env", "code", "expected"),
    [
        (["--log-level", "foo", "topics", "list"], {}, 1, "gdx: unknown log level 'foo' (--log-level) — choose from"),
        (["topics", "list"], {"GDX_LOG_LEVEL": "foo"}, 1, "gdx: unknown log level 'foo' (GDX_LOG_LEVEL)"),
        (["reconcile", "--agency", "typo"], {}, 2, "gdx reconcile: argument --agency: invalid choice: 'typo'"),
        (["lag", "--port", "abc"], {}, 2, "gdx lag: argument --port: invalid int value: 'abc'"),
        (["simulate", "--scale", "many"], {}, 2, "gdx simulate: argument --scale: invalid int value: 'many'"),
        (["index", "show", "person", "1"], {}, 2, "gdx index show: argument kind: invalid choice: 'person'"),
        (["consent", "revoke"], {}, 2, "gdx consent revoke: the following arguments are required: consent_id"),
        (["nosuch"], {}, 2, "gdx: argument COMMAND: invalid choice: 'nosuch'"),
        (
            ["index", "digest"],
            {"GDX_INDEX_URL": "postgresql://gdx:s3cret@127.0.0.1:1/index"},
            1,
            "gdx: the index database postgresql+psycopg://gdx:***@127.0.0.1:1/index cannot be opened",
        ),
        (
            ["index", "digest"],
            {"GDX_INDEX_URL": "postgresql://gdx:s3cret@127.0.0.1:notaport/index"},
            1,
            "gdx: index URL 'postgresql://gdx:***@127.0.0.1:notaport/index' is not a database URL",
        ),
        (
            ["index", "digest"],
            {"GDX_INDEX_URL": "postgres ql://gdx:s3cr@et@at/index"},
            1,
            "gdx: index URL 'postgres ql://gdx:***@at/index' is not a database URL",
        ),
        (
            ["schemas", "asyncapi", "--out", "/nonexistent/asyncapi.json"],
            {},
            1,
            "gdx: No such file or directory: /nonexistent/asyncapi.json",
        ),
    ],
)
def test_a_user_mistake_is_one_line(
    args: list[str], env: dict[str, str], code: int, expected: str, tmp_path: Path
) -> None:
    done = run_gdx(*args, env={"GDX_STATE_DIR": str(tmp_path), **env}, timeout=60)
    assert done.code == code, done.err
    assert done.err.startswith(expected), done.err
    assert done.err.count("\n") == 1 and "Traceback" not in done.err
    assert "s3cr" not in done.err  # the password, even split by an @ it contains


def test_a_settings_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "gdx.toml"
    broken.write_text("kafka_port = [\n")
    done = run_gdx("topics", "list", env={"GDX_SETTINGS_FILE": str(broken)}, timeout=60)
    assert done.code == 1
    assert done.err.startswith(f"gdx: settings file {broken} is not valid TOML") and done.err.count("\n") == 1
