"""The CKAN actions that came second: tags, licences, autocomplete, resource search, activity streams, help.

Each is a plain function of ``(catalogue, data)`` whose docstring is what ``help_show`` returns for it, as
CKAN returns its action functions' docstrings. :data:`HELP` documents the earlier actions the same way.

    >>> sorted(DOCUMENTED)[:3]
    ['datastore_info', 'help_show', 'license_list']
"""

from __future__ import annotations

import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from catalogue.errors import NotFound, ValidationFailed
from catalogue.packages import LICENSES
from catalogue.service import Catalogue

JsonObject = dict[str, Any]
AUTOCOMPLETE_MAX = 100
ACTIVITY_LIMIT = 31  # CKAN's ckan.activity_list_limit default
ACTIVITY_MAX = 100


def _int(data: JsonObject, key: str, default: int, maximum: int) -> int:
    try:
        value = int(data.get(key, default))
    except (TypeError, ValueError):
        raise ValidationFailed({key: ["Invalid integer"]}) from None
    if value < 0:
        raise ValidationFailed({key: ["Must be a natural number"]})
    return min(value, maximum)


def _flag(data: JsonObject, key: str) -> bool:
    return data.get(key) in (True, "true", "True", "1", 1, "yes")


def qala_version() -> str:
    try:
        return version("qala")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


async def tag_list(catalogue: Catalogue, data: JsonObject) -> list[Any]:
    """Return a list of the site's tags.

    :param query: a tag name query to search for; only tags whose names contain this string are returned
    :type query: string
    :param all_fields: return full tag dictionaries instead of just names (optional, default: ``False``)
    :type all_fields: bool
    :rtype: list of strings, or of dictionaries with ``id``, ``name``, ``display_name``, ``vocabulary_id``
    """
    query = str(data.get("query") or data.get("q") or "").lower()
    names = [name for name in await catalogue.tag_list() if query in name.lower()]
    if not _flag(data, "all_fields"):
        return names
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "tag:" + name)),
            "name": name,
            "display_name": name,
            "vocabulary_id": None,
        }
        for name in names
    ]


async def license_list(catalogue: Catalogue, data: JsonObject) -> list[JsonObject]:
    """Return the list of licenses available for datasets on the site.

    :rtype: list of dictionaries
    """
    return [
        {
            "id": license_id,
            "title": title,
            "url": url,
            "status": "active",
            "maintainer": "",
            "family": "",
            "is_generic": license_id in ("other-closed", "notspecified"),
            "od_conformance": "approved" if isopen else "not reviewed",
            "osd_conformance": "not reviewed",
            "is_okd_compliant": isopen,
            "is_osi_compliant": False,
        }
        for license_id, (title, url, isopen) in LICENSES.items()
    ]


async def package_autocomplete(catalogue: Catalogue, data: JsonObject) -> list[JsonObject]:
    """Return a list of datasets (packages) that match a string.

    Datasets with names or titles that contain the query string will be returned.

    :param q: the string to search for
    :type q: string
    :param limit: the maximum number of resource formats to return (optional, default: ``10``)
    :type limit: int
    :rtype: list of dictionaries with ``name``, ``title``, ``match_field``, ``match_displayed``
    """
    q = str(data.get("q") or "").strip().lower()
    limit = _int(data, "limit", 10, AUTOCOMPLETE_MAX)
    if not q or not limit:
        return []
    out: list[JsonObject] = []
    for name in await catalogue.package_list():
        if q in name:
            doc = await catalogue.package_show(name)
            out.append({"name": name, "title": doc["title"], "match_field": "name", "match_displayed": name})
            if len(out) >= limit:
                return out
    found = await catalogue.package_search({"q": q, "rows": limit * 2})
    for doc in found["results"]:
        titles = [doc.get("title") or "", *(doc.get("title_translated") or {}).values()]
        title = next((t for t in titles if q in t.lower()), None)
        if title and all(o["name"] != doc["name"] for o in out):
            out.append({"name": doc["name"], "title": doc["title"], "match_field": "title", "match_displayed": title})
    return out[:limit]


def _resource_terms(data: JsonObject) -> dict[str, list[str]]:
    query = data.get("query")
    terms: dict[str, list[str]] = {}
    items = [query] if isinstance(query, str) else (query or [])
    if not isinstance(items, list):
        raise ValidationFailed({"query": ["Must be a string or a list of field:term strings"]})
    for item in items:
        field, sep, term = str(item).partition(":")
        if not sep:
            raise ValidationFailed({"query": ["Must be <field>:<value> pair(s)"]})
        terms.setdefault(field.strip(), []).append(term.strip().lower())
    fields = data.get("fields") or {}
    if isinstance(fields, dict):
        for field, term in fields.items():
            terms.setdefault(str(field), []).append(str(term).lower())
    return terms


async def resource_search(catalogue: Catalogue, data: JsonObject) -> JsonObject:
    """Search for resources satisfying a given search criteria.

    It returns a dictionary with 2 fields: ``count`` and ``results``. Each term of ``query`` is a
    ``{field}:{term}`` string and matches resources whose field contains the term, ignoring case.

    :param query: the search criteria, e.g. ``format:CSV`` or ``["name:air", "format:json"]``
    :type query: string or list of strings
    :param order_by: a resource field to order the results by (optional)
    :param offset: apply an offset to the query (optional)
    :param limit: apply a limit to the query (optional)
    :rtype: dictionary with ``count`` and ``results``
    """
    terms = _resource_terms(data)
    offset = _int(data, "offset", 0, 10**9)
    limit = _int(data, "limit", 10**9, 10**9)
    matches: list[JsonObject] = []
    start = 0
    while True:
        page = await catalogue.package_search({"rows": 1000, "start": start, "sort": "name asc"})
        for doc in page["results"]:
            for resource in doc.get("resources", []):
                if all(
                    all(term in str(resource.get(field) or "").lower() for term in wanted)
                    for field, wanted in terms.items()
                ):
                    matches.append(resource)
        start += len(page["results"])
        if not page["results"] or start >= page["count"]:
            break
    order = data.get("order_by")
    if isinstance(order, str) and order:
        matches.sort(key=lambda r: str(r.get(order) or ""))
    return {"count": len(matches), "results": matches[offset : offset + limit]}


async def package_activity_list(catalogue: Catalogue, data: JsonObject) -> list[JsonObject]:
    """Return a package's activity stream (newest first).

    A live dataset gains a ``changed package`` activity each time the hub re-describes it after new data
    arrived through the exchange; a static one when a client creates, updates or deletes it.

    :param id: the id or name of the package
    :param offset: where to start getting activity items from (optional, default: ``0``)
    :param limit: the maximum number of activities to return (optional, default: ``31``, upper limit: ``100``)
    :param include_data: include each activity's package dictionary (optional, default: ``True``)
    :rtype: list of dictionaries
    """
    key = data.get("id")
    if not isinstance(key, str) or not key:
        raise ValidationFailed({"id": ["Missing value"]})
    doc = await catalogue.store.get_dataset(key)
    object_id = doc["id"] if doc else key
    found = await catalogue.store.activities(
        object_id,
        _int(data, "limit", ACTIVITY_LIMIT, ACTIVITY_MAX),
        _int(data, "offset", 0, 10**9),
        include_data=data.get("include_data", True) not in (False, "false", "False", "0"),
    )
    if doc is None and not found:
        raise NotFound("Dataset not found")
    return found


async def recently_changed_packages_activity_list(catalogue: Catalogue, data: JsonObject) -> list[JsonObject]:
    """Return the activity stream of all recently added or changed packages (newest first).

    :param offset: where to start getting activity items from (optional, default: ``0``)
    :param limit: the maximum number of activities to return (optional, default: ``31``, upper limit: ``100``)
    :rtype: list of dictionaries
    """
    return await catalogue.store.activities(
        None, _int(data, "limit", ACTIVITY_LIMIT, ACTIVITY_MAX), _int(data, "offset", 0, 10**9)
    )


DOCUMENTED = {
    "tag_list": tag_list,
    "license_list": license_list,
    "package_autocomplete": package_autocomplete,
    "resource_search": resource_search,
    "package_activity_list": package_activity_list,
    "recently_changed_packages_activity_list": recently_changed_packages_activity_list,
    "help_show": None,
    "datastore_info": None,
}

HELP: dict[str, str] = {
    "status_show": "Return a dictionary with information about the site's configuration: Qala's version, "
    "the CKAN API version it speaks (3) and the actions and extensions it implements.",
    "site_read": "Return True (kept for old tools; removed from CKAN in 2.11).",
    "help_show": "Return the help string for a particular API action.\n\n:param name: Action function name "
    "(e.g. `package_create`, `package_search`)\n:type name: string\n:returns: The help string for the action function",
    "package_list": "Return a list of the names of the site's datasets (packages).\n\n:param limit: if given, the "
    "list of datasets will be broken into pages of at most ``limit`` datasets per page\n:param offset: when "
    "``limit`` is given, the offset to start returning packages from\n:rtype: list of strings",
    "package_search": "Searches for packages satisfying a given search criteria.\n\n:param q: the solr query "
    "(default ``*:*``)\n:param fq: any filter queries to apply\n:param rows: the maximum number of matching rows "
    "to return (default 10, upper limit 1000)\n:param start: the offset in the complete result\n:param sort: "
    "sorting of the search results\n:param facet.field: the fields to facet upon\n:rtype: dictionary with "
    "``count``, ``results``, ``facets``, ``search_facets``",
    "package_show": "Return the metadata of a dataset (package) and its resources.\n\n:param id: the id or name "
    "of the dataset\n:rtype: dictionary",
    "organization_list": "Return a list of the names of the site's organizations.\n\n:param all_fields: return "
    "group dictionaries instead of just names\n:param limit: the maximum number of organizations returned\n"
    ":param offset: when ``limit`` is given, the offset to start returning organizations from",
    "organization_show": "Return the details of an organization.\n\n:param id: the id or name of the "
    "organization\n:param include_datasets: include a truncated list of the org's datasets",
    "group_list": "Return a list of the names of the site's groups.\n\n:param all_fields: return group "
    "dictionaries instead of just names",
    "group_show": "Return the details of a group.\n\n:param id: the id or name of the group\n"
    ":param include_datasets: include a truncated list of the group's datasets",
    "resource_show": "Return the metadata of a resource.\n\n:param id: the id of the resource\n:rtype: dictionary",
    "resource_view_list": "Return the list of resource views for a particular resource (always empty here).\n\n"
    ":param id: the id of the resource",
    "datastore_search": "Search a DataStore resource.\n\n:param resource_id: id of the resource to be searched\n"
    ':param filters: matching conditions to select, e.g {"key1": "a", "key2": "b"}\n:param q: full text '
    "query; with ``plain=false`` the query may use prefix terms such as ``snow:*``, ``&`` and ``|``\n:param plain: "
    "treat as plain text query (default: true)\n:param limit: maximum number of rows to return (default: 100, "
    "upper limit: 32000)\n:param offset: offset this number of rows\n:param fields: fields to return\n:param sort: "
    'comma separated field names with ordering, e.g.: "fieldname1, fieldname2 desc"\n:param records_format: '
    "the format for the records return value: 'objects' (default) list of {fieldname1: value1, ...} dicts, "
    "'lists' list of [value1, value2, ...] lists, 'csv' string containing comma-separated values with no header, "
    "'tsv' string containing tab-separated values with no header",
    "datastore_info": "Returns detailed metadata about a resource.\n\n:param id: Id of the resource we want info "
    "about\n:rtype: dictionary with ``meta`` (``count``) and ``fields`` (``id``, ``type``, ``schema``)",
    "package_create": "Create a new dataset (package). You must be authorized to create new datasets.",
    "package_update": "Update a dataset (package). You must be authorized to edit the dataset.",
    "package_patch": "Patch a dataset (package): only the fields given are changed.",
    "package_delete": "Delete a dataset (package).\n\n:param id: the id or name of the dataset to delete",
    "resource_create": "Appends a new resource to a datasets list of resources (a URL or an uploaded file).",
    "organization_create": "Create a new organization. You must be authorized to create organizations.",
    "group_create": "Create a new group. You must be authorized to create groups.",
}


def help_text(name: str, run: Any) -> str:
    """What ``help_show`` returns: the action's documentation."""
    function = DOCUMENTED.get(name)
    if function is not None and function.__doc__:
        return function.__doc__.strip()
    return HELP.get(name) or (run.__doc__ or name).strip()


def status(catalogue: Catalogue, actions: list[str]) -> JsonObject:
    """``status_show``: Qala's own version and what it implements; no CKAN version is claimed."""
    settings = catalogue.settings
    return {
        "site_title": settings.title,
        "site_description": settings.description,
        "site_url": settings.site_url,
        "error_emails_to": None,
        "locale_default": settings.default_locale,
        "locales_offered": ["kk", "ru", "en"],
        "extensions": ["qala_live", "datastore", "dcat", "activity", "frictionless"],
        "software": "qala",
        "qala_version": qala_version(),
        "api_version": 3,
        "actions": sorted(actions),
        "dcat": {"profile": "DCAT-AP 3.0.1", "endpoints": ["/catalog.{ttl,jsonld,rdf,xml,n3}", "/dataset/{name}.ttl"]},
        "datastore": {"records_format": ["objects", "lists", "csv", "tsv"], "full_text": "plain or prefix (term:*)"},
    }
