from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qala.cli import build_app
from schemas.registry import MODELS_DIR

runner = CliRunner()
EXAMPLE = MODELS_DIR / "ServiceRequest" / "examples" / "astana-pothole-phone.json"


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_list_and_show() -> None:
    code, output = run("schemas", "list")
    assert code == 0
    assert "service-requests" in output
    code, output = run("schemas", "show", "service-requests")
    assert code == 0
    assert "contactPhone" in output
    assert "1.1.0" in output
    code, output = run("schemas", "show", "ServiceRequest", "--version", "1.0.0", "--json")
    assert code == 0
    assert json.loads(output)["x-version"] == "1.0.0"


def test_show_unknown_type_is_one_line_error() -> None:
    result = runner.invoke(build_app(), ["schemas", "show", "Unicorn"])
    assert result.exit_code == 2
    assert result.output.strip() == "qala: error: unknown type or collection: 'Unicorn'"


def test_validate_valid_files_exits_zero() -> None:
    code, output = run("schemas", "validate", *map(str, sorted(EXAMPLE.parent.glob("*.json"))))
    assert code == 0
    assert output.strip().endswith("3 entities: 3 valid, 0 invalid")


def test_validate_reports_each_error_with_its_pointer(tmp_path: Path) -> None:
    entity = json.loads(EXAMPLE.read_text())
    entity["contactPhone"] = "8 701 555"
    del entity["channel"]
    lines = [json.dumps(entity, ensure_ascii=False), json.dumps(json.loads(EXAMPLE.read_text()), ensure_ascii=False)]
    path = tmp_path / "batch.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, output = run("schemas", "validate", str(path))
    assert code == 1
    assert (
        f"{path}:1: urn:ngsi-ld:ServiceRequest:astana:IK-2024-0312877: /channel: 'channel' is a required "
        "property [required]" in output
    )
    assert "/contactPhone:" in output
    assert "[pattern]" in output
    assert "2 entities: 1 valid, 1 invalid" in output


def test_validate_malformed_files_one_line_each_no_traceback(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"type": "ServiceRequest",', encoding="utf-8")
    cp1251 = tmp_path / "cp1251.json"
    cp1251.write_bytes('{"description": "Яма на дороге"}'.encode("cp1251"))
    ndjson = tmp_path / "lines.ndjson"
    ndjson.write_text('[1, 2]\n"text"\n{broken\n', encoding="utf-8")
    code, output = run("schemas", "validate", str(bad_json), str(cp1251), str(ndjson), str(tmp_path / "none.json"))
    assert code == 1
    assert "Traceback" not in output
    assert f"{bad_json}: invalid JSON:" in output
    assert f"{cp1251}: not UTF-8 text (byte 0xDF at offset 17)" in output
    assert f"{ndjson}:1: expected a JSON object, got array" in output
    assert f"{ndjson}:2: expected a JSON object, got string" in output
    assert f"{ndjson}:3: invalid JSON:" in output
    assert "none.json: cannot read: No such file or directory" in output
    assert "0 entities: 0 valid, 0 invalid; 6 unreadable" in output


def test_compat_between_released_versions() -> None:
    code, output = run("schemas", "compat", "ServiceRequest@1.0.0", "ServiceRequest@1.1.0")
    assert code == 0
    assert "1.1.0 is compatible with 1.0.0" in output
    code, output = run("schemas", "compat", "ServiceRequest@1.1.0", "ServiceRequest@1.0.0")
    assert code == 1
    assert "property 'mediaUrl' was removed" in output


def test_compat_with_a_schema_file(tmp_path: Path) -> None:
    schema = json.loads((MODELS_DIR / "ServiceRequest" / "schema.json").read_text())
    schema["x-version"] = "1.2.0"
    schema["required"].append("description")
    path = tmp_path / "next.json"
    path.write_text(json.dumps(schema))
    code, output = run("schemas", "compat", "ServiceRequest", str(path))
    assert code == 1
    assert "BREAKING /required: property 'description' became required" in output
