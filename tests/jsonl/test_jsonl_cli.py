from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from airflow_provider_files.cli import main
from airflow_provider_files.jsonl.cli import configure_shard_parser, run_shard

from .support import line, lines, write

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = REPO_ROOT / ".venv" / "bin" / "airflow-files"


def test_valid_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "ok.jsonl", lines(3))
    assert main(["validate", str(path)]) == 0
    assert "ok.jsonl is a valid batch file: 3 requests to /v1/chat/completions" in capsys.readouterr().out


def test_invalid_file_exits_1_and_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bad.jsonl", lines(3) + line(2))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "bad.jsonl is not a valid batch file: 1 error." in out
    assert "line 4: duplicate custom_id 'req-2' (first seen on line 2) [duplicate_custom_id]" in out


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.jsonl")]) == 2
    captured = capsys.readouterr()
    assert "cannot read" in captured.err and "No such file or directory" in captured.err
    assert captured.out == ""


def test_directory_exits_2(tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path)]) == 2


@pytest.mark.parametrize(
    "arguments",
    [
        ["validate"],
        ["validate", "x.jsonl", "--max-errors", "-1"],
        ["validate", "x", "--max-lines", "0"],
        ["validate", "x", "--max-bytes", "12 parsecs"],
    ],
)
def test_usage_errors_exit_2(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2


def test_max_errors_limits_what_is_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bad.jsonl", b"".join(line(index, method="GET") for index in range(1, 11)))
    assert main(["validate", str(path), "--max-errors", "2"]) == 1
    out = capsys.readouterr().out
    assert "10 errors" in out and "line 2:" in out and "line 3:" not in out and "... and 8 more." in out


def test_limits_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "b.jsonl", lines(3))
    assert main(["validate", str(path), "--max-lines", "2"]) == 1
    assert "[too_many_lines]" in capsys.readouterr().out
    assert main(["validate", str(path), "--max-bytes", "1KB"]) == 0
    assert main(["validate", str(path), "--max-bytes", "100"]) == 1
    assert "more than the limit of 100" in capsys.readouterr().out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "b.jsonl", lines(2) + b"[]\n")
    assert main(["validate", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["lines"] == 3
    assert [(error["line"], error["rule"]) for error in report["errors"]] == [(3, "not_object")]


def test_console_script_subprocess(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", lines(2))
    bad = write(tmp_path / "bad.jsonl", lines(2) + b"\n")
    results = [
        subprocess.run([str(CONSOLE_SCRIPT), "validate", *args], capture_output=True, text=True, timeout=60)
        for args in ([str(good)], [str(bad)], [str(tmp_path / "nope.jsonl")], [])
    ]
    assert [result.returncode for result in results] == [0, 1, 2, 2]
    assert "is a valid batch file" in results[0].stdout
    assert "line 3: blank line" in results[1].stdout
    assert "No such file or directory" in results[2].stderr


def test_console_script_reads_stdin(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "validate", "-"], input=lines(2) + line(1), capture_output=True, timeout=60
    )
    assert result.returncode == 1
    assert b"line 3: duplicate custom_id" in result.stdout


def shard_cli(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="airflow-files shard")
    configure_shard_parser(parser)
    return run_shard(parser.parse_args(arguments))


def test_shard_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path / "big.jsonl", lines(5))
    assert shard_cli([str(source), str(tmp_path / "out"), "--max-lines", "2"]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        f"big-0000{n}.jsonl" for n in (1, 2, 3)
    ]
    assert "big-00003.jsonl: 1 requests" in capsys.readouterr().out
    write(source, lines(2) + line(1))
    assert shard_cli([str(source), str(tmp_path / "out2")]) == 1
    assert "duplicate_custom_id" in capsys.readouterr().out
    assert shard_cli([str(tmp_path / "missing.jsonl"), str(tmp_path / "out3")]) == 2
