"""The CLI tells the truth (issue 11): check finds everything at once, usage is forgiving and one-line,
pipes end quietly, init writes a config that passes check. Subprocesses, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from conftest import FLAMEWATCH
from test_cli import WEBHOOK_SECRET, Run, cli, env

from flamewatch.simulator import SimulatorServer

__all__ = ["Run", "cli", "env"]  # fixtures from test_cli, used by name


# --- check: everything at once -------------------------------------------------------------------


async def test_check_reports_every_problem_run_would_stop_on_at_once(cli, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("def oops(:\n")
    (tmp_path / "store-dir").mkdir()
    config = f"""
[watch]
list = "topstories"
[plugins]
dirs = ["plugins", "no-such-dir"]
disable = ["slak"]
[store]
path = "{tmp_path / 'store-dir'}"
[[notifiers]]
name = "hooks"
type = "webhook"
url = "http://127.0.0.1:9/"
secret = {{ env = "FW_BAD_SECRET" }}
[[notifiers]]
name = "slack-url"
type = "slack"
webhook_url = {{ env = "FW_NOT_A_URL" }}
[[notifiers]]
name = "slack-bot"
type = "slack"
token = {{ env = "FW_TOKEN" }}
channel = "#hn alerts"
[[notifiers]]
name = "new-only"
type = "console"
lists = ["newstories"]
"""
    run = await cli("check", config=config, extra_env={"FW_BAD_SECRET": "not-base64!!", "FW_NOT_A_URL": "sekrit",
                                                       "FW_TOKEN": "xoxb-1"})
    assert (run.code, run.out) == (2, ""), run.err
    lines = run.err.splitlines()
    assert all(line.startswith("flamewatch: error: ") for line in lines), run.err
    expected = ["no-such-dir", "broken.py", "'slak'", "store.path", "is a directory", "(slack-bot).channel",
                "contains a space", "notifier hooks: ", "secret #1 is not valid base64",
                "notifier slack-url: webhook_url: the secret is not an http(s) URL",
                "(new-only).lists: never matches: only topstories is watched"]
    for text in expected:
        assert text in run.err, (text, run.err)
    assert len(lines) == 8, run.err
    assert "sekrit" not in run.err and "not-base64" not in run.err


async def test_check_lists_every_mistake_in_the_main_sections_one_line_each(cli) -> None:
    # Issue 22 item 8: a file with many mistakes gave one line; every one is listed, naming file and key.
    config = """
bogus = 1
[watch]
top = "thirty"
period = "soon"
lizt = "topstories"
[hn]
timeout = -1
[store]
history_days = "a week"
[[watch.lists]]
name = "topstories"
top = "x"
[[notifiers]]
type = "console"
digest = "often"
[[notifiers]]
name = "x y"
type = "console"
"""
    run = await cli("check", config=config)
    assert (run.code, run.out) == (2, ""), run.err
    lines = run.err.splitlines()
    keys = ["watch.top", "watch.period", "watch.lizt", "hn.timeout", "store.history_days", "watch.lists[0].top",
            "notifiers[0].digest", "notifiers[1].name", "bogus"]
    assert len(lines) == len(keys), run.err
    for key in keys:
        assert sum(f"flamewatch.toml: {key}: " in line for line in lines) == 1, (key, run.err)
    # Once the main sections read well, the [rules] table and the notifiers' own options list every
    # mistake too, with the rest of check's findings.
    run = await cli("check", config="""
[rules]
comment_levels = [10, "x"]
comment_levelz = 5
points_levels = "many"
[[notifiers]]
type = "webhook"
urll = "http://127.0.0.1:9/"
timeoutt = 3
""")
    assert run.code == 2, run.err
    for key in ("rules.comment_levels[1]", "rules.comment_levelz", "rules.points_levels", "(webhook).urll",
                "(webhook).timeoutt", "(webhook).url: missing"):
        assert key in run.err, (key, run.err)
    assert len(run.err.splitlines()) == 6, run.err


async def test_check_accepts_a_good_config(cli) -> None:
    run = await cli("check", config='[[notifiers]]\ntype = "console"\nlists = ["topstories"]\n')
    assert run.code == 0, run.err
    assert "config: " in run.out and run.err == ""


# --- global options, usage, durations --------------------------------------------------------------


async def test_global_options_work_before_or_after_the_command(cli, tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("[watch]\ntop = 3\n")
    before = await cli("-c", str(config), "-q", "check")
    after = await cli("check", "-c", str(config), "-v")
    assert before.code == after.code == 0, (before.err, after.err)
    assert "top 3" in before.out and "top 3" in after.out
    quiet = await cli("plugins", "-q")
    assert quiet.code == 0, quiet.err


async def test_period_takes_durations_and_refuses_nan_and_inf(cli) -> None:
    for bad in ("nan", "inf", "-5", "soon"):
        run = await cli("run", "--period", bad, "--store", ":memory:")
        assert run.code == 2
        (line,) = run.err.splitlines()
        assert line.startswith("flamewatch: error: argument --period: "), line
    run = await cli("demo", "--period", "5m", "--duration", "1ms", "--help")
    assert run.code == 0


async def test_every_subcommand_help_has_a_description_and_an_example(cli) -> None:
    commands = ["init", "run", "once", "count", "demo", "simulate", "check", "plugins", "notify-test", "outbox"]
    runs = await asyncio.gather(*(cli(command, "--help") for command in commands))
    for command, run in zip(commands, runs, strict=True):
        assert run.code == 0, run.err
        description = run.out.split("\n\n")[1]
        assert len(description) > 30 and not description.startswith(("options", "positional")), (command, run.out)
        assert "example:\n  flamewatch" in run.out and command in run.out.split("example:")[1], run.out


async def test_log_format_json_is_one_object_per_line(cli) -> None:
    run = await cli("-v", "check", "--log-format", "json", config="[plugins]\ndisable = []\n")
    assert run.code == 0, run.err
    run = await cli("once", "--log-format", "json", "--api-url", "http://127.0.0.1:9", "--store", ":memory:",
                    config="[hn]\nretries = 0\ntimeout = 0.5\n")
    assert run.code == 1
    records = [json.loads(line) for line in run.err.splitlines()]  # every line, the error included
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records), run.err
    assert records[-1]["level"] == "error" and "cannot fetch the story list" in records[-1]["message"]


# --- pipes ---------------------------------------------------------------------------------------


async def _run_with_closed_stdout(*args: str, env: dict[str, str], cwd: Path, read_lines: int = 0,
                                  timeout: float = 15.0) -> tuple[int, str]:  # noqa: ASYNC109 - a test bound
    """Run flamewatch, read ``read_lines`` lines of its stdout, close it as `head` does; (status, stderr)."""
    proc = await asyncio.create_subprocess_exec(*FLAMEWATCH, *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    for _ in range(read_lines):
        await proc.stdout.readline()
    proc._transport.get_pipe_transport(1).close()  # type: ignore[attr-defined]  # the reader goes away
    async with asyncio.timeout(timeout):
        err = await proc.stderr.read()
        status = await proc.wait()
    return status, err.decode()


async def test_check_into_a_closed_pipe_ends_quietly(env: dict[str, str], tmp_path: Path) -> None:
    status, err = await _run_with_closed_stdout("check", env=env, cwd=tmp_path)
    assert status in (0, -signal.SIGPIPE), err
    assert err == ""


async def test_demo_into_head_stops_promptly(env: dict[str, str], tmp_path: Path) -> None:
    # The demo would run for 60s; the reader leaves after 3 lines and the demo must end with it.
    # Any free port for the status page: the default one (8642) may be another process's.
    status, err = await _run_with_closed_stdout("demo", "--duration", "60", "--period", "0.2", "--http", "127.0.0.1:0",
                                                env=env, cwd=tmp_path, read_lines=3, timeout=15.0)
    assert status in (0, -signal.SIGPIPE), err
    assert "retrying" not in err and "Traceback" not in err


# --- init ----------------------------------------------------------------------------------------


async def test_init_writes_a_config_that_passes_check_and_refuses_to_overwrite(cli, tmp_path: Path) -> None:
    path = tmp_path / "conf" / "fw.toml"
    run = await cli("init", "--slack", "--email", "--webhook", str(path))
    assert run.code == 0, run.err
    text = path.read_text()
    assert text.startswith("# flamewatch configuration") and 'type = "slack"' in text and 'type = "email"' in text
    assert "export SLACK_WEBHOOK_URL=" in run.out and f"flamewatch -c {path} check" in run.out
    secrets = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "SMTP_PASSWORD": "pw",
               "FLAMEWATCH_WEBHOOK_SECRET": WEBHOOK_SECRET}
    check = await cli("-c", str(path), "check", extra_env=secrets)
    assert check.code == 0, check.err
    again = await cli("init", str(path))
    assert again.code == 2 and "already exists; use --force" in again.error_line()
    assert path.read_text() == text
    forced = await cli("init", "--force", str(path))
    assert forced.code == 0 and 'type = "slack"' not in path.read_text()
    plain = await cli("-c", str(path), "check")
    assert plain.code == 0, plain.err


# --- run / once tell the truth about deliveries ----------------------------------------------------


def down_webhook(port: int, **extra: str) -> str:
    lines = [f'{k} = {v}' for k, v in extra.items()]
    return ('[[notifiers]]\nname = "hooks"\ntype = "webhook"\n'
            f'url = "http://127.0.0.1:{port}/hook"\nsecret = {{ env = "FW_HOOK_SECRET" }}\n' + "\n".join(lines) + "\n")


async def test_run_refuses_a_notifier_that_fails_permanently_at_start(cli, sim: SimulatorServer) -> None:
    run = await cli("run", "--api-url", sim.base_url, "--store", ":memory:", "--http", "", config=down_webhook(9),
                    extra_env={"FW_HOOK_SECRET": "not-base64!!"})
    assert run.code == 2
    lines = [line for line in run.err.splitlines() if line.startswith("flamewatch: error: ")]
    assert len(lines) == 1 and "notifier hooks: " in lines[0] and "not valid base64" in lines[0], run.err
    assert "cycle 0" not in run.err


async def test_once_fails_when_deliveries_fail_and_says_so(cli, sim: SimulatorServer, tmp_path: Path,
                                                            unused_tcp_port: int) -> None:
    config = '[rules]\ncomment_levels = [1, 2]\n[delivery]\nretry_base = "1h"\n' + down_webhook(unused_tcp_port)
    run = await cli("once", "--api-url", sim.base_url, "--store", str(tmp_path / "fw.db"), "--top", "3",
                    config=config, extra_env={"FW_HOOK_SECRET": WEBHOOK_SECRET})
    assert run.code == 1, run.err
    summary = next(line for line in run.err.splitlines() if "deliveries:" in line)
    assert "0 delivered" in summary and "3 stories" in summary, summary
    assert run.err.splitlines()[-1].startswith("flamewatch: error: ")
    assert "deliveries failed; 'flamewatch outbox' shows why" in run.err.splitlines()[-1]
    outbox = await cli("outbox", "--store", str(tmp_path / "fw.db"), config=config,
                       extra_env={"FW_HOOK_SECRET": WEBHOOK_SECRET})
    failed = int(run.err.splitlines()[-1].split()[2])
    assert f" {failed} pending" in outbox.out.splitlines()[0] and failed >= 1, outbox.out


async def test_stop_summary_counts_the_outbox_as_flamewatch_outbox_does(
    cli, sim: SimulatorServer, tmp_path: Path, unused_tcp_port: int, env: dict[str, str]
) -> None:
    from test_faults import FlamewatchProcess

    config = tmp_path / "fw.toml"
    config.write_text('[rules]\ncomment_levels = [1, 2, 3]\n[watch]\ntop = 4\nperiod = "1h"\n'
                      '[delivery]\nretry_base = "1h"\n' + down_webhook(unused_tcp_port))
    store = tmp_path / "fw.db"
    os.environ["FW_HOOK_SECRET"] = WEBHOOK_SECRET
    try:
        # No status page (--http ""): the default port may be another process's on a shared machine.
        async with FlamewatchProcess("-c", str(config), "run", "--api-url", sim.base_url,
                                     "--store", str(store), "--http", "") as proc:
            await proc.wait_for_line("cycle 0:")
            await proc.wait_for_line("retrying in")
            proc.signal(signal.SIGTERM)
            assert await proc.exit_status(10) == 0, proc.stderr
    finally:
        del os.environ["FW_HOOK_SECRET"]
    stop = await proc.wait_for_line("stopped: ")
    outbox = await cli("-c", str(config), "outbox", "--store", str(store), extra_env={"FW_HOOK_SECRET": WEBHOOK_SECRET})
    counted = outbox.out.splitlines()[0].removeprefix("outbox: ")
    pending = [part for part in counted.split(", ") if part.endswith("pending")]
    assert pending and pending[0] != "0 pending"
    assert f"outbox: {pending[0]}" in stop, (stop, outbox.out)


# --- count ---------------------------------------------------------------------------------------


async def test_count_takes_several_ids_and_says_when_one_is_not_a_story(cli, sim: SimulatorServer) -> None:
    stories = sim.world.lists["topstories"][:2]
    comment = next(i for i, item in sim.world.items.items() if item.get("type") == "comment")
    run = await cli("count", "--api-url", sim.base_url, *map(str, stories), str(comment), config="")
    assert run.code == 1
    lines = run.out.splitlines()
    assert [line.split()[1] for line in lines] == [str(s) for s in stories], run.out
    (error,) = [line for line in run.err.splitlines() if "error" in line]
    assert error.startswith(f"flamewatch: error: item {comment} is a comment, not a story (it replies to item ")
    assert "\r" not in run.err  # not a terminal: no progress line


async def test_count_shows_progress_on_a_terminal_only(env: dict[str, str], tmp_path: Path,
                                                       sim: SimulatorServer) -> None:
    import pty

    story = max(sim.world.lists["topstories"], key=sim.world.visible_count)
    sim.faults.latency = 0.15  # slow enough that the count takes longer than the progress line's delay
    config = tmp_path / "slow.toml"
    config.write_text("[hn]\nmax_inflight = 8\n")
    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            *FLAMEWATCH, "-c", str(config), "count", "--api-url", sim.base_url, str(story), cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE, stderr=follower)
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, seen
    text = seen.decode(errors="replace")
    assert f"counting {story}: " in text and " items, " in text and "/s" in text, text
    assert "\r\x1b[K" in text
    assert out.decode().startswith(f"Post {story} has ")


# --- logging and wording -------------------------------------------------------------------------


async def test_debug_logging_is_not_flooded_by_sqlite_statements(cli, sim: SimulatorServer) -> None:
    run = await cli("once", "-vv", "--api-url", sim.base_url, "--store", ":memory:", "--top", "3",
                    config='[[notifiers]]\ntype = "console"\nstream = "stdout"\n')
    assert run.code == 0, run.err
    lines = run.err.splitlines()
    assert any("DEBUG" in line for line in lines)
    assert not any(" aiosqlite: " in line and "DEBUG" in line for line in lines), run.err[:2000]


def test_one_is_singular() -> None:
    from flamewatch.cli.common import plural
    from flamewatch.cli.counting import result_line
    from flamewatch.cli.watching import _story_line
    from flamewatch.crawl import CrawlResult

    assert result_line(CrawlResult(7, comments=1)).startswith("Post 7 has 1 comment, ")
    assert result_line(CrawlResult(7, comments=2)).startswith("Post 7 has 2 comments, ")
    assert _story_line(1, CrawlResult(7, comments=1)).startswith("  1. Post 7 has 1 comment: ")
    assert (plural(1, "alert"), plural(0, "alert"), plural(1, "story", "stories"), plural(3, "story", "stories")) == (
        "1 alert", "0 alerts", "1 story", "3 stories")


def test_license_matches_pyproject() -> None:
    import tomllib

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    license_text = (root / "LICENSE").read_text()
    assert "MIT" in str(project.get("license")) and license_text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in license_text


async def test_init_asks_which_notifiers_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(*FLAMEWATCH, "init", cwd=tmp_path, env=env, stdin=follower,
                                                    stdout=follower, stderr=asyncio.subprocess.PIPE)
        os.write(leader, b"y\nn\n\n")  # slack yes, email no, webhook: Enter (no)
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, err
    text = (tmp_path / "flamewatch.toml").read_text()
    assert 'type = "slack"' in text and 'type = "email"' not in text and 'type = "webhook"' not in text


async def test_demo_says_what_its_levels_are_and_ends_with_next_steps(cli) -> None:
    run = await cli("demo", "--duration", "1", "--period", "0.5", "--http", "127.0.0.1:0")  # never 8642 for real
    assert run.code == 0, run.err
    assert "alerts fire when a thread crosses 10, 25, 50" in run.out and "lowered for the demo" in run.out
    summary, steps = run.out.split("\nnext steps:\n")
    assert "summary: " in summary and "flamewatch init" in steps and "flamewatch run" in steps


async def test_demo_takes_a_free_port_when_8642_is_taken_and_prints_it(cli) -> None:
    import errno
    import re
    import socket

    with socket.socket() as holder:
        # SO_REUSEADDR as the demo's own server has it: a port left in TIME_WAIT by an earlier user would
        # refuse a plain bind here and then let the demo serve on it for real.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", 8642))
            holder.listen()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # Another process holds it (a daemon, another demo): just as good for this test.
        run = await cli("demo", "--duration", "1", "--period", "0.5")
    assert run.code == 0, run.err
    assert "8642" in run.out and "taking a free port instead" in run.out, run.out
    (port,) = re.findall(r"status page: http://127\.0\.0\.1:(\d+)/", run.out)
    assert int(port) != 8642


async def test_check_finds_a_read_only_store_file_and_warns_of_a_port_in_use(cli, tmp_path: Path) -> None:
    # Issue 22 item 8: check passed what run then refused.
    import socket

    from flamewatch.store import open_store

    store = tmp_path / "fw.db"
    async with await open_store(store):
        pass
    store.chmod(0o444)
    run = await cli("check", config=f'[http]\nlisten = ""\n[store]\npath = "{store}"\n')
    assert (run.code, run.out) == (2, ""), run.err
    assert run.err.splitlines() == [f"flamewatch: error: {tmp_path / 'flamewatch.toml'}: store.path: {store}: the "
                                    "file is read-only (mode -r--r--r--); flamewatch must write to it (fix its "
                                    "permissions, or use 'flamewatch outbox list' to only look)"], run.err
    # A port in use now: the config is right, but run would refuse to start: said, as a warning.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = await cli("check", config=f'[http]\nlisten = "127.0.0.1:{port}"\n[store]\npath = ":memory:"\n')
    assert run.code == 0, run.err
    assert (f"warning: http.listen: 127.0.0.1:{port} is in use now (" in run.out
            and "'flamewatch run' would refuse to start while it is" in run.out), run.out
