"""The command line as a user meets it: arguments checked before any request or write, crawls quiet offline,
an empty crawl says so and fails, help readable at 80 columns, paths printed whole."""
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from artdata.cli import app
from artdata.mirror import Mirror
from artdata.paths import Home
from artdata.mirror.findartinfo import attach



def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line_error(r, *fragments):
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert "Traceback" not in r.output


@pytest.fixture
def site():
    m = Mirror().start()
    attach(m)
    yield m
    m.stop()


@pytest.mark.parametrize("bad", ["../../escape", "Met paintings", "/abs", ".hidden", ""])
def test_bad_names_fail_before_any_request_or_write(tmp_path, site, bad):
    home = Home(tmp_path / "home")
    urls = tmp_path / "list.txt"
    urls.write_text(f"{site.base('media')}/x/1.jpg\n")
    before = len(site.logs["media"].entries) + len(site.logs["api"].entries)
    r = _invoke("crawl", "urls", urls, "--name", bad, "--home", home.root)
    _one_line_error(r, f"--name {bad!r}: a manifest name is lower-case letters")
    r = _invoke("crawl", "findartinfo", "--base-url", site.base("api"), "--name", bad, "--home", home.root)
    _one_line_error(r, f"--name {bad!r}")
    r = _invoke("crawl", "met", "--api-base", site.met_api_base, "--name", bad, "--home", home.root)
    _one_line_error(r, f"--name {bad!r}")
    assert len(site.logs["media"].entries) + len(site.logs["api"].entries) == before      # nothing was asked
    assert not home.root.exists()                                                         # nothing was written
    assert not (tmp_path / "escape").exists() and not list(tmp_path.parent.glob("escape-*"))


def test_name_error_suggests_a_valid_name(tmp_path):
    r = _invoke("import-folder", tmp_path, "--name", "Met paintings", "--home", tmp_path / "h")
    _one_line_error(r, "(e.g. 'met-paintings')")
    r = _invoke("build-split", "culture", "--from", "met", "--name", "../up", "--home", tmp_path / "h")
    _one_line_error(r, "--name '../up'")
    r = _invoke("train", "--manifest", "x", "--model", "tate-cnn", "--run-name", "../up", "--home", tmp_path / "h")
    _one_line_error(r, "--run-name '../up': a plain folder name")
    assert not (tmp_path / "h").exists()


def test_after_fixing_the_name_the_same_job_resumes(tmp_path, site):
    """A typo in --name costs nothing: the corrected command harvests, and running it again fetches nothing."""
    home = Home(tmp_path / "home")
    site.add_route = getattr(site, "add_route", None)
    urls = tmp_path / "list.txt"
    urls.write_text("".join(f"{site.base('media')}/missing/{i}.jpg\n" for i in range(3)))
    _one_line_error(_invoke("crawl", "urls", urls, "--name", "My URLs", "--home", home.root, "--retries", "0"))
    r = _invoke("crawl", "urls", urls, "--name", "my-urls", "--home", home.root, "--retries", "0")
    assert r.exit_code == 0, r.output
    n = len(site.logs["media"].entries)
    r = _invoke("crawl", "urls", urls, "--name", "my-urls", "--home", home.root, "--retries", "0")
    assert r.exit_code == 0 and len(site.logs["media"].entries) == n and "3 already done" in r.output


def _crawl(site, home, *extra):
    cmd = [sys.executable, "-m", "artdata", "crawl", "findartinfo", "--base-url", site.base("api"), "--delay", "0",
           "--metadata-only", "--max-pages", "1", "--home", str(home.root), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLDEXTRACT")}
    env.update(COLUMNS="80", PYTHONWARNINGS="default")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)


def test_findartinfo_offline_no_traceback_no_deprecation_and_letter_spellings(tmp_path, site):
    home = Home(tmp_path)
    r = _crawl(site, home, "--letters", "AB")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "Deprecat" not in r.stderr and "publicsuffix" not in r.stderr, r.stderr
    ab = int(re.search(r"(\d+) items", r.stderr).group(1))
    assert ab > 0
    r2 = _crawl(site, Home(tmp_path / "h2"), "--letters", "a, b")
    assert r2.returncode == 0 and int(re.search(r"(\d+) items", r2.stderr).group(1)) == ab
    r3 = _crawl(site, Home(tmp_path / "h3"), "--letters", "A1")
    assert r3.returncode == 1 and r3.stderr.strip() == ("Error: --letters 'A1': artist index letters A-Z, "
                                                        "as A,B,C or ABC")
    assert not (tmp_path / "h3").exists()


def test_a_crawl_that_finds_nothing_says_why_and_fails(tmp_path, site):
    r = _crawl(site, Home(tmp_path), "--letters", "Q")
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: findartinfo: no sales found in ") and "letters Q" in last
    assert "Traceback" not in r.stderr
    urls = tmp_path / "empty.txt"
    urls.write_text("\n")
    r = _invoke("crawl", "urls", urls, "--home", tmp_path / "h")
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith(
        "Error: urls: the selection matched no records: nothing harvested")


def _commands(group=app, prefix=()):
    import typer.main
    click_group = typer.main.get_command(group)

    def walk(cmd, path):
        sub = getattr(cmd, "commands", None)
        if sub:
            for name, c in sub.items():
                yield from walk(c, path + (name,))
        else:
            yield path
    return list(walk(click_group, prefix))


def test_help_of_every_command_reads_at_80_columns():
    cmds = _commands()
    assert ("train",) in cmds and ("crawl", "findartinfo") in cmds and ("manifests", "verify") in cmds
    for path in [()] + cmds:
        r = CliRunner().invoke(app, [*path, "--help"], terminal_width=80, env={"COLUMNS": "80"})
        assert r.exit_code == 0, (path, r.output)
        text = r.output
        assert "--no-no-" not in text, path
        assert not re.search(r"\w \.(\s|$)", text), (path, re.search(r".{20}\w \.(\s|$)", text))
        assert all(len(line) <= 80 for line in text.splitlines()), (path, max(text.splitlines(), key=len))
        assert "╭" not in text and "│" not in text, path            # plain help, no boxes to squeeze it
        if path:
            assert text.split("\n\n")[1].strip(), f"{path}: no help text"
    r = CliRunner().invoke(app, ["train", "--help"], terminal_width=80)
    assert "--feature-cache / --no-feature-cache" in r.output and "--augment / --no-augment" in r.output
    assert "NAME[@VERSION]" in r.output and "[the model's own]" in r.output


def test_long_paths_are_printed_whole():
    from artdata.console import console
    path = "/very/long/" + "/".join(f"folder{i:02d}" for i in range(12)) + "/report/index.html"
    with console.capture() as cap:          # (never reassign console.file: that pins it to one stream)
        console.print(f"  run report: {path}")
    first_line = cap.get().splitlines()[0]
    assert path in first_line and len(first_line) > console.width       # whole, although wider than the console


@pytest.mark.parametrize("args", [("crawl", "urls", "/nonexistent/list.txt"),
                                  ("crawl", "tate", "/nonexistent/artworks.parquet"),
                                  ("crawl", "met", "--api-base", "http://127.0.0.1:9", "--ids-from", "/nonexistent.csv"),
                                  ("import-folder", "/nonexistent/folder", "--name", "x"),
                                  ("build-split", "price", "--from", "nothing"),
                                  ("train", "--manifest", "x", "--model", "resnet9")])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, args):
    home = tmp_path / "home"
    r = _invoke(*args, "--home", home)
    _one_line_error(r)
    assert not home.exists() or not any(home.rglob("*")), list(home.rglob("*"))
