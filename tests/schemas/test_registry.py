from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EntityInvalid, SchemaLoadError, SchemaRegistry, UnknownType, UnknownVersion, collection_name
from schemas.identifiers import check_digit, is_valid_bin, with_check_digit
from schemas.registry import MODELS_DIR

REGISTRY = SchemaRegistry.load()


def test_lookup_by_type_collection_and_version() -> None:
    latest = REGISTRY.get("ServiceRequest")
    assert REGISTRY.get("service-requests") is latest
    assert REGISTRY.get("ServiceRequest", "1.0.0").version == "1.0.0"
    assert [v.version for v in REGISTRY.versions("ServiceRequest")][:2] == ["1.0.0", "1.1.0"]
    with pytest.raises(UnknownType):
        REGISTRY.get("Unicorn")
    with pytest.raises(UnknownVersion, match=r"known: 1\.0\.0, 1\.1\.0"):
        REGISTRY.get("ServiceRequest", "9.9.9")


def test_every_collection_name_is_the_kebab_plural_of_its_type() -> None:
    for version in REGISTRY.latest():
        assert version.collection == collection_name(version.type_name)


def test_documents_are_self_contained() -> None:
    for version in REGISTRY.latest():
        text = json.dumps(version.document)
        assert "https://schemas.qala.kz/common" not in text.replace(version.schema_id, "")


def test_personal_fields_are_marked_and_redacted() -> None:
    service_requests = REGISTRY.get("ServiceRequest")
    assert service_requests.personal_fields == {"contactName", "contactPhone", "contactEmail"}
    entity = json.loads((MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json").read_text())
    redacted = service_requests.redact(entity)
    assert "contactPhone" not in redacted
    assert redacted["id"] == entity["id"]
    assert REGISTRY.is_valid(redacted)


def test_validate_raises_with_every_issue() -> None:
    entity = {"type": "ServiceRequest", "id": "urn:ngsi-ld:ServiceRequest:astana:1", "city": "astana"}
    with pytest.raises(EntityInvalid) as caught:
        REGISTRY.validate(entity)
    pointers = {issue.pointer for issue in caught.value.issues}
    assert {"/dateModified", "/serviceCode", "/status", "/channel", "/dateRequested"} <= pointers


def test_unknown_type_and_non_objects_are_explained() -> None:
    assert REGISTRY.explain({"type": "Unicorn"})[0].keyword == "x-known-type"
    assert REGISTRY.explain([1, 2])[0].message.startswith("an entity is a JSON object")
    assert not REGISTRY.is_valid("text")


def test_bin_checksum() -> None:
    valid = with_check_digit("05014000456")
    assert is_valid_bin(valid)
    wrong = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert not is_valid_bin(wrong)
    assert not is_valid_bin("12345678901a")
    assert not is_valid_bin(123456789012)
    assert not is_valid_bin("١٢٣٤٥٦٧٨٩٠١٢")  # Arabic-Indic digits are digits to str.isdigit, not to a BIN


@settings(max_examples=3000, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_the_unrolled_bin_check_agrees_with_check_digit(digits: str) -> None:
    expected = check_digit(digits[:11])
    assert is_valid_bin(digits) == (expected is not None and expected == int(digits[11]))


def _copy_models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(MODELS_DIR, root)
    return root


def test_a_released_version_may_not_change(tmp_path: Path) -> None:
    root = _copy_models(tmp_path)
    path = root / "ServiceRequest" / "schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["serviceCode"]["pattern"] = "^.*$"
    path.write_text(json.dumps(schema))
    with pytest.raises(SchemaLoadError, match="is released and may not change"):
        SchemaRegistry.load(root)


def test_a_working_version_loads_beside_released_ones(tmp_path: Path) -> None:
    root = _copy_models(tmp_path)
    path = root / "ServiceRequest" / "schema.json"
    schema = json.loads(path.read_text())
    schema["$id"] = schema["$id"].replace("1.1.0", "1.2.0")
    schema["x-version"] = "1.2.0"
    schema["properties"]["channel"]["enum"].append("kiosk")
    path.write_text(json.dumps(schema))
    registry = SchemaRegistry.load(root)
    latest = registry.get("ServiceRequest")
    assert (latest.version, latest.released) == ("1.2.0", False)
    assert registry.get("ServiceRequest", "1.1.0").released


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["properties"].pop("$bad", None) or s.pop("$id"), "missing '\\$id'"),
        (
            lambda s: s["properties"]["city"].update({"$ref": "https://nowhere.example/x.json#/$defs/Y"}),
            "unresolvable \\$ref",
        ),
        (lambda s: s.update({"title": "Other"}), "differs from the folder"),
    ],
)
def test_broken_schema_files_are_named(tmp_path: Path, edit: object, message: str) -> None:
    root = _copy_models(tmp_path)
    path = root / "ServiceRequest" / "schema.json"
    schema = json.loads(path.read_text())
    schema["x-version"] = "1.2.0"
    schema["$id"] = schema["$id"].replace("1.1.0", "1.2.0")
    edit(schema)  # type: ignore[operator]
    path.write_text(json.dumps(schema))
    with pytest.raises(SchemaLoadError, match=message):
        SchemaRegistry.load(root)
