from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

import adapters.cli
from adapters.push import HubClient
from qala.cli import build_app

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
runner = CliRunner()


def test_list_shows_every_builtin_adapter() -> None:
    result = runner.invoke(build_app(), ["adapt", "list"])
    assert result.exit_code == 0
    for name in ("csv", "xlsx", "dbf", "fixed-width", "xml", "open311", "gtfs-rt", "senml", "senml-mqtt"):
        assert name in result.output


def test_run_writes_output_quarantine_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "cases.ndjson"
    result = runner.invoke(
        build_app(),
        ["adapt", "run", "csv", str(SAMPLES / "ikomek-109-astana.csv"), "--mapping",
         str(SAMPLES / "ikomek-109-astana.yaml"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "read" in result.output
    assert "48" in result.output
    assert "invalid-value (dateRequested)" in result.output
    assert len(out.read_bytes().splitlines()) == 45
    quarantine = tmp_path / "cases.quarantine.ndjson"
    assert len(quarantine.read_bytes().splitlines()) == 3


def test_clean_run_leaves_no_empty_quarantine(tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_bytes((SAMPLES / "ikomek-109-astana.csv").read_bytes().split(b"\r\n", 3)[0] + b"\r\n" +
                       (SAMPLES / "ikomek-109-astana.csv").read_bytes().split(b"\r\n", 3)[1] + b"\r\n")  # fmt: skip
    out = tmp_path / "one.ndjson"
    result = runner.invoke(build_app(), ["adapt", "run", "csv", str(source), "-m",
                                         str(SAMPLES / "ikomek-109-astana.yaml"), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0
    assert not (tmp_path / "one.quarantine.ndjson").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["adapt", "run", "nope", "x.csv"], "no adapter named 'nope'"),
        (["adapt", "run", "csv", "missing.csv", "-m", str(SAMPLES / "ikomek-109-astana.yaml")], "cannot open"),
        (["adapt", "run", "csv", "x.csv"], "needs a mapping"),
        (["adapt", "run", "gtfs-rt", str(SAMPLES / "almaty-vehicles.pb")], "city"),
        (["adapt", "run", "csv", "x.csv", "-o", "novalue"], "KEY=VALUE"),
        (["adapt", "run", "csv", "x.csv", "--push", "http://hub"], "--client-id"),
    ],
)
def test_failures_are_one_line_without_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    process = subprocess.run(
        [sys.executable, "-c", "from qala.cli import main; main()", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert process.returncode != 0
    assert "Traceback" not in process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr
    assert message in lines[0]


def test_push_through_the_cli_resumes(tmp_path: Path, hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def client(*args: Any, **kwargs: Any) -> HubClient:
        return HubClient(*args, **kwargs, transport=httpx.MockTransport(hub.handle), sleep=lambda s: None, attempts=2)

    monkeypatch.setattr(adapters.cli, "HubClient", client)
    args = ["adapt", "run", "xlsx", str(SAMPLES / "almaty-109.xlsx"), "-m", str(SAMPLES / "almaty-109.yaml"),
            "--quarantine", str(tmp_path / "q.ndjson"), "--push", "http://hub.test", "--client-id", "ikomek",
            "--client-secret", "s3cret", "--batch-size", "8"]  # fmt: skip
    hub.down = True
    failed = runner.invoke(build_app(), args)
    assert failed.exit_code == 1
    assert "did not take the batch" in str(failed.exception) or "did not take the batch" in failed.output
    hub.down = False
    done = runner.invoke(build_app(), args)
    assert done.exit_code == 0, done.output
    assert "created 30" in done.output
    assert len(hub.store) == 30
    state = orjson.loads((tmp_path / "q.push-state.json").read_bytes())
    assert state["complete"] is True
    quarantined = [orjson.loads(line) for line in (tmp_path / "q.ndjson").read_bytes().splitlines()]
    assert len(hub.quarantine) == len(quarantined) >= 1, "the rejected records reached the hub as well"
    again = runner.invoke(build_app(), args)  # a completed run pushed again changes nothing
    assert "unchanged 30" in again.output
    assert len(hub.store) == 30
    assert len(hub.quarantine) == len(quarantined), "re-sent quarantine records are stored once"


def test_workers_option_writes_what_one_process_writes(tmp_path: Path) -> None:
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"cases-{workers}.ndjson"
        result = runner.invoke(
            build_app(),
            ["adapt", "run", "csv", str(SAMPLES / "ikomek-109-astana.csv"), "--mapping",
             str(SAMPLES / "ikomek-109-astana.yaml"), "--out", str(out), "--workers", workers],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append((out.read_bytes(), (tmp_path / f"cases-{workers}.quarantine.ndjson").read_bytes()))
    assert outputs[0] == outputs[1]
    assert len(outputs[1][0].splitlines()) == 45


def test_out_dash_streams_ndjson_to_standard_output(tmp_path: Path) -> None:
    """``--out -`` writes the NDJSON to standard output, for a pipe, and the summary to standard error; the
    quarantine goes next to the source's name. The same bytes as ``--out FILE``, with workers or without."""
    args = [
        "adapt",
        "run",
        "csv",
        str(SAMPLES / "ikomek-109-astana.csv"),
        "-m",
        str(SAMPLES / "ikomek-109-astana.yaml"),
    ]
    assert runner.invoke(build_app(), [*args, "--out", str(tmp_path / "cases.ndjson")]).exit_code == 0
    expected = (tmp_path / "cases.ndjson").read_bytes()
    for workers in ("1", "2"):
        process = subprocess.run(
            [sys.executable, "-c", "from qala.cli import main; main()", *args, "--out", "-", "--workers", workers],
            capture_output=True, cwd=tmp_path, timeout=120, check=False,
        )  # fmt: skip
        assert process.returncode == 0, process.stderr
        assert process.stdout == expected
        assert b"standard output" in process.stderr
        assert b"accepted" in process.stderr
        assert (tmp_path / "ikomek-109-astana.csv.quarantine.ndjson").read_bytes().count(b"\n") == 3
        assert not (tmp_path / "-").exists()
    process = subprocess.run(  # a file that is really named "-" is still reachable
        [sys.executable, "-c", "from qala.cli import main; main()", *args, "--out", "./-"],
        capture_output=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert (tmp_path / "-").read_bytes() == expected


def test_run_prints_what_it_decided_with_the_evidence(tmp_path: Path) -> None:
    result = runner.invoke(
        build_app(),
        ["adapt", "run", "csv", str(SAMPLES / "facilities-astana.csv"), "-m", str(SAMPLES / "facilities-astana.yaml"),
         "--encoding", "auto", "--out", str(tmp_path / "f.ndjson")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "detected: encoding kz1048: byte 0x9d at line 1" in " ".join(result.output.split())
