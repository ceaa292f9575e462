"""CKAN package and resource dictionaries: validating what clients send, completing what the API shows.

Titles and descriptions are multilingual (``title_translated`` / ``notes_translated``: ``{kk, ru, en}``, the
ckanext-fluent convention); the plain ``title`` and ``notes`` CKAN tools read are the default-locale text.

    >>> doc = normalise({"name": "bus-stops", "title_translated": {"en": "Bus stops", "kk": "Аялдамалар"}})
    >>> doc["title"], doc["license_id"]
    ('Аялдамалар', 'CC-BY-4.0')
    >>> try:
    ...     normalise({"name": "Bad Name!"})
    ... except ValidationFailed as error:
    ...     list(error.fields)
    ['name']
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from catalogue.errors import ValidationFailed
from catalogue.i18n import LOCALES, pick
from catalogue.links import check_link

JsonObject = dict[str, Any]
NAME_PATTERN = re.compile(r"^[a-z0-9_-]{2,100}$")
LICENSES = {
    "CC-BY-4.0": ("Creative Commons Attribution 4.0", "https://creativecommons.org/licenses/by/4.0/", True),
    "CC0-1.0": ("Creative Commons CCZero", "https://creativecommons.org/publicdomain/zero/1.0/", True),
    "CC-BY-SA-4.0": (
        "Creative Commons Attribution Share-Alike 4.0",
        "https://creativecommons.org/licenses/by-sa/4.0/",
        True,
    ),
    "ODbL-1.0": ("Open Data Commons Open Database License", "https://opendatacommons.org/licenses/odbl/1-0/", True),
    "other-closed": ("Other (Not Open)", "", False),
    "notspecified": ("License not specified", "", False),
}
# Keys the server owns: a client may send them back (package_update with a package_show result), they are ignored.
SERVER_KEYS = {
    "metadata_created",
    "metadata_modified",
    "num_resources",
    "num_tags",
    "organization",
    "state",
    "creator_user_id",
    "revision_id",
    "relationships_as_subject",
    "relationships_as_object",
}


def now() -> datetime:
    return datetime.now(UTC)


def _translated(
    data: JsonObject, key: str, plain: str, errors: dict[str, list[str]], default_locale: str = "kk"
) -> dict[str, str]:
    """The ``{kk, ru, en}`` texts. A plain ``title``/``notes`` that differs from the translated text in the
    default language comes from a client that knows only CKAN's plain fields: it then replaces them all."""
    value = data.get(key) or {}
    text = data.get(plain)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        errors[key] = ["Must be an object of language code to text (kk, ru, en)"]
        return {}
    translated = {loc: text for loc, text in value.items() if loc in LOCALES and text}
    if isinstance(text, str) and text and text != pick(translated, default_locale):
        return dict.fromkeys(LOCALES, text)
    return translated


def _names(value: Any, key: str, errors: dict[str, list[str]]) -> list[str]:
    """A list of ``{name: ...}`` dicts or plain strings (CKAN accepts both for tags and groups)."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors[key] = ["Must be a list"]
        return []
    out = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name.strip():
            errors[key] = ["Each item needs a name"]
            continue
        out.append(name.strip())
    return list(dict.fromkeys(out))


def normalise_resource(data: JsonObject, position: int) -> JsonObject:
    """A resource dict with CKAN's keys; ``url`` may be empty for an upload the caller fills in."""
    if not isinstance(data, dict):
        raise ValidationFailed({"resources": ["Each resource must be an object"]})
    resource = dict(data)
    resource.setdefault("id", str(uuid.uuid4()))
    resource.setdefault("name", resource.get("url", "").rsplit("/", 1)[-1] or "resource")
    resource.setdefault("description", "")
    resource.setdefault("url", "")
    check_link(resource["url"], "url")
    last = str(resource["url"]).rsplit("/", 1)[-1]
    guess = last.rsplit(".", 1)[-1] if "." in last else ""
    resource["format"] = str(resource.get("format") or guess.upper())
    resource.setdefault("mimetype", None)
    resource.setdefault("size", None)
    resource.setdefault("url_type", None)
    resource.setdefault("datastore_active", False)
    resource.setdefault("state", "active")
    resource["position"] = position
    return resource


def normalise(data: JsonObject, default_locale: str = "kk") -> JsonObject:
    """Validate a package dict from a client and complete it (ids and timestamps are the store's job)."""
    errors: dict[str, list[str]] = {}
    name = data.get("name")
    if not isinstance(name, str) or not name:
        errors["name"] = ["Missing value"]
    elif not NAME_PATTERN.match(name):
        errors["name"] = ["Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"]
    titles = _translated(data, "title_translated", "title", errors, default_locale)
    notes = _translated(data, "notes_translated", "notes", errors, default_locale)
    license_id = data.get("license_id") or "CC-BY-4.0"
    if license_id not in LICENSES:
        errors["license_id"] = [f"Unknown licence; one of: {', '.join(LICENSES)}"]
    tags = _names(data.get("tags"), "tags", errors)
    if isinstance(data.get("tag_string"), str):
        tags += [t.strip() for t in data["tag_string"].split(",") if t.strip()]
    groups = _names(data.get("groups"), "groups", errors)
    extras = data.get("extras") or []
    if not isinstance(extras, list) or not all(isinstance(e, dict) and "key" in e for e in extras):
        errors["extras"] = ["Must be a list of {key, value}"]
    resources = data.get("resources") or []
    if not isinstance(resources, list):
        errors["resources"] = ["Must be a list"]
        resources = []
    if errors:
        raise ValidationFailed(errors)
    title_text = pick(titles, default_locale) or str(name)
    doc = {key: value for key, value in data.items() if key not in SERVER_KEYS}
    license_title, license_url, isopen = LICENSES[license_id]
    doc.update(
        name=name,
        type="dataset",
        title=title_text,
        title_translated=titles or {default_locale: title_text},
        notes=pick(notes, default_locale),
        notes_translated=notes,
        license_id=license_id,
        license_title=license_title,
        license_url=license_url,
        isopen=isopen,
        tags=[
            {"name": t, "display_name": t, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "tag:" + t)), "vocabulary_id": None}
            for t in dict.fromkeys(tags)
        ],
        groups=[{"name": g} for g in groups],
        extras=[{"key": str(e["key"]), "value": str(e.get("value", ""))} for e in extras],
        resources=[normalise_resource(r, i) for i, r in enumerate(resources)],
        private=False,
    )
    doc.pop("tag_string", None)
    check_link(doc.get("url"), "url")
    for key in ("url", "version", "author", "author_email", "maintainer", "maintainer_email", "owner_org"):
        doc.setdefault(key, None)
    return doc


def finish(
    doc: JsonObject,
    *,
    organization: JsonObject | None,
    groups: dict[str, JsonObject],
    created: datetime,
    modified: datetime,
) -> JsonObject:
    """Add what ``package_show`` reports beside the client's fields: timestamps, counts, embedded org/groups."""
    out = dict(doc)
    out["organization"] = organization
    out["owner_org"] = organization["id"] if organization else None
    out["groups"] = [
        {
            key: groups[g["name"]].get(key)
            for key in ("id", "name", "title", "display_name", "description", "image_display_url")
        }
        for g in doc.get("groups", [])
        if g["name"] in groups
    ]
    out["state"] = "active"
    out["metadata_created"] = created.replace(tzinfo=None).isoformat()
    out["metadata_modified"] = modified.replace(tzinfo=None).isoformat()
    out["num_resources"] = len(out.get("resources", []))
    out["num_tags"] = len(out.get("tags", []))
    for resource in out.get("resources", []):
        resource["package_id"] = out["id"]
        resource.setdefault("created", out["metadata_created"])
        resource.setdefault("last_modified", None)
        resource.setdefault("metadata_modified", out["metadata_modified"])
        resource.setdefault("description", "")
        resource.setdefault("size", None)
        resource.setdefault("hash", "")
        resource.setdefault("state", "active")
        resource.setdefault("resource_type", None)
        resource.setdefault("mimetype_inner", None)
        resource.setdefault("cache_url", None)
        resource.setdefault("cache_last_updated", None)
    out.setdefault("relationships_as_subject", [])
    out.setdefault("relationships_as_object", [])
    out.setdefault("creator_user_id", None)
    return out


def group_dict(data: JsonObject, *, is_organization: bool, default_locale: str = "kk") -> JsonObject:
    """An organisation or group dict (CKAN's ``group_dictize`` keys)."""
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValidationFailed(
            {"name": ["Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"]}
        )
    errors: dict[str, list[str]] = {}
    titles = _translated(data, "title_translated", "title", errors, default_locale)
    descriptions = _translated(data, "description_translated", "description", errors, default_locale)
    if errors:
        raise ValidationFailed(errors)
    title = pick(titles, default_locale) or name
    return {
        "id": data.get("id")
        or str(uuid.uuid5(uuid.NAMESPACE_URL, f"qala-{'org' if is_organization else 'group'}:{name}")),
        "name": name,
        "title": title,
        "display_name": title,
        "title_translated": titles or {default_locale: title},
        "description": pick(descriptions, default_locale),
        "description_translated": descriptions,
        "image_url": data.get("image_url") or "",
        "image_display_url": data.get("image_url") or "",
        "type": "organization" if is_organization else "group",
        "is_organization": is_organization,
        "approval_status": "approved",
        "state": "active",
    }
