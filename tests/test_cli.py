"""The command line: help everywhere, exact one-line errors, exit codes."""
import subprocess
import sys

from typer.testing import CliRunner

from artdata.cli import app
from artdata.mirror import Mirror

runner = CliRunner()


def _commands(group, prefix=()):
    import typer.main
    cmd = typer.main.get_command(group)
    out = []

    def walk(c, path):
        subs = getattr(c, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, path + (name,))
        else:
            out.append(path)
    walk(cmd, ())
    return out


def test_every_command_has_help():
    cmds = _commands(app)
    assert ("crawl", "met") in cmds and ("manifests", "materialize") in cmds and ("demo",) in cmds
    import typer.main
    root = typer.main.get_command(app)
    for path in cmds:
        c = root
        for p in path:
            c = c.commands[p]
        assert c.help and len(c.help.strip()) > 10, path
        res = runner.invoke(app, list(path) + ["--help"])
        assert res.exit_code == 0 and "Usage" in res.output, path


def test_errors_are_one_line_with_exit_1(tmp_path):
    res = runner.invoke(app, ["manifests", "show", "nope", "--home", str(tmp_path)])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [f"Error: no manifest named 'nope' in {tmp_path}/manifests (none yet)"]
    res = runner.invoke(app, ["crawl", "met", "--rate", "0", "--home", str(tmp_path)])
    assert res.exit_code == 1 and res.output.strip() == "Error: --rate must be positive, not 0.0"
    res = runner.invoke(app, ["crawl", "tate", str(tmp_path / "missing.parquet"), "--home", str(tmp_path)])
    assert res.exit_code == 1 and res.output.strip().startswith("Error: ")
    assert "missing.parquet" in res.output and "Traceback" not in res.output


def test_wrong_flag_is_usage_error():
    res = runner.invoke(app, ["crawl", "met", "--bogus"])
    assert res.exit_code == 2 and "--bogus" in res.output


def test_crawl_list_show_verify_diff_via_cli(tmp_path):
    home = str(tmp_path / "h")
    with Mirror() as m:
        base = ["crawl", "met", "--api-base", m.met_api_base, "--image-size", "32", "--rate", "50",
                "--workers", "1", "--home", home]
        r1 = runner.invoke(app, base + ["--limit", "10"])
        assert r1.exit_code == 0, r1.output
        assert "manifest met@" in r1.output
        r2 = runner.invoke(app, base + ["--limit", "14"])
        assert r2.exit_code == 0, r2.output
    v1 = r1.output.split("manifest met@")[1].split()[0]
    v2 = r2.output.split("manifest met@")[1].split()[0]
    res = runner.invoke(app, ["manifests", "list", "--home", home])
    assert res.exit_code == 0 and f"met@{v1}" in res.output and f"met@{v2}" in res.output
    res = runner.invoke(app, ["manifests", "show", f"met@{v1}", "--home", home])
    assert res.exit_code == 0 and "rows: 10" in res.output and "lineage:" in res.output
    res = runner.invoke(app, ["manifests", "verify", "met", "--home", home])
    assert res.exit_code == 0 and "OK" in res.output
    res = runner.invoke(app, ["manifests", "diff", f"met@{v1}", f"met@{v2}", "--home", home])
    assert res.exit_code == 0 and "added 4" in res.output and "removed 0" in res.output


def test_verify_failure_exit_code(tmp_path):
    home = tmp_path / "h"
    with Mirror() as m:
        res = runner.invoke(app, ["crawl", "met", "--api-base", m.met_api_base, "--image-size", "32", "--rate", "50",
                                  "--limit", "5", "--workers", "1", "--home", str(home)])
        assert res.exit_code == 0
    for p in (home / "images").rglob("*.jpg"):
        p.unlink()
        break
    res = runner.invoke(app, ["manifests", "verify", "met", "--home", str(home)])
    assert res.exit_code == 1 and "missing" in res.output and "Error:" in res.output


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "artdata", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "crawl" in out.stdout
