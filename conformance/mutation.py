"""Mutation testing of the reference module: how many small defects of ``examples/vendor_module`` the suite kills.

A mutant changes one thing in the module's source (a comparison, a boolean operator, a constant, a ``return`` or
``raise``, a call statement); the suite runs against it (stopping at the first failed MUST), and the mutant is
*killed* when the run is not certified or a SHOULD test fails. Survivors are either equivalent (no client can
tell them apart; each is listed with its reason in :data:`EQUIVALENT`) or a gap in the suite.

Why not mutmut or cosmic-ray: both run a test command per mutant in a fresh interpreter (mutmut 3 also needs
pytest-collected tests to map mutants to), and importing FastAPI, the schema registry and the suite costs about
two seconds per process here; this runner imports once and forks a child per mutant, which loads only the
mutated module's package anew. The operator set is the classic one (Offutt's sufficient operators: relational,
logical, constant, statement deletion).

    mutants = list(generate(Path("examples/vendor_module")))
    outcome = run_mutant(mutants[0], state_dir)          # in a forked child
"""

from __future__ import annotations

import ast
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "examples.vendor_module"
FAULT_NAMES = frozenset(
    {"Fault", "faults", "defects", "accept_none", "ignore_expiry", "stamp_modified", "lax", "leak", "home",
     "later_page", "keep_listed", "as_text", "updated_since_text", "TOKEN_DEFECTS", "HOME_CITY", "html",
     "drop_status", "_deleted", "_NoExpiry", "crash", "later", "forget"}
)  # fmt: skip
"""Names of the defect switches: code that only runs with a defect switched on is not the reference module."""
SKIPPED_FUNCTIONS = frozenset({"from_environment", "_decode", "_decode_with", "validate_exp", "forget"})
"""Not mutated: the uvicorn factory (configuration, outside any HTTP suite's reach) and defect-only helpers."""

_KEY_CACHE = "JWKS caching policy: it changes only how often the module fetches the issuer's keys, never an answer"
EQUIVALENT: dict[str, str] = {
    "app.py:caller:constant:'' -> 'X'": "the default of a missing Authorization header: '' and 'X' both lack "
    "'bearer ', so both answer 401",
    "app.py:upsert:constant:'x-path-id' -> 'x-path-idX'": "the keyword of a validation error is the module's "
    "own name for its rule; the mandate fixes its presence, not its value",
    "auth.py:<module>:constant:5.0 -> 6.0": _KEY_CACHE,
    "auth.py:__init__:constant:0.0 -> 1.0": _KEY_CACHE,
    "auth.py:_key_set:relational:key.kid == kid -> key.kid != kid": _KEY_CACHE,
    "auth.py:_key_set:remove not:not known -> known": _KEY_CACHE,
    "auth.py:_key_set:relational:self._keys is None -> self._keys is not None": _KEY_CACHE,
    "auth.py:_key_set:logical:not known and time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS or "
    "self._keys is None -> (not known and time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS) and "
    "self._keys is None": _KEY_CACHE + " (the first fetch happens either way: the monotonic clock is past the "
    "refetch interval when the module starts, and a rotated key is refetched only after it)",
    "app.py:entity_response:constant:'/' -> '/X'": "rstrip of the request's base URL, which ends in '/' and whose "
    "host never ends in X",
    "store.py:_inside:return None:return False -> return None": "None and False are both false where the result "
    "is used (an if)",
    "auth.py:_key_set:constant:503 -> 504": "the status for an issuer whose keys cannot be fetched: the mandate "
    "does not fix it (both are 5xx for the module's own outage), and the suite's issuer is always up",
    "problems.py:__init__:remove call:super().__init__(detail) -> pass": "the exception's args are never shown; "
    "the detail is rendered from the attribute",
    "problems.py:handle:return None:return render(Problem(500, 'internal', 'the module failed to handle this "
    "request')) -> return None": "the handler of unexpected exceptions: the reference module raises none under "
    "the suite (every crash the suite provokes in a defective variant is caught by QM-ERR-003)",
    "app.py:body_of:constant:'' -> 'X'": "the default of a missing Content-Type: neither '' nor 'x' is "
    "application/json, so both answer 415",
    "app.py:published:constant:'/' -> '/X'": "the servers URL the module advertises: informative, and left out of "
    "the certificate's OpenAPI digest on purpose (the same module at two addresses is one API)",
    "app.py:create_app:constant:'1.0.0' -> '1.0.0X'": "the module's own version number: any value names a version; "
    "the suite cannot know which one the vendor meant",
    "app.py:openapi:constant:False -> True": "include_in_schema of the route serving /openapi.json: FastAPI's "
    "generated document is switched off (openapi_url=None), so the flag has no effect",
    "auth.py:<module>:constant:30 -> 31": "the clock leeway: the suite's expired and early tokens are an hour "
    "off, and a leeway of 30 or 31 seconds is the module's tolerance of clock skew, which the mandate leaves open",
    "auth.py:__init__:constant:'/' -> '/X'": "rstrip of the configured issuer URL: the URL has neither a trailing "
    "slash nor a trailing X",
    "auth.py:_key_set:logical:not known and time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS -> not known "
    "or time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS": _KEY_CACHE,
    "auth.py:_key_set:arithmetic:time.monotonic() - self._fetched_at -> time.monotonic() + self._fetched_at": (
        _KEY_CACHE
    ),
    "auth.py:_key_set:remove raise:raise Problem(503, 'issuer-unavailable', f\"cannot fetch the issuer's keys: "
    '{exc}") from exc -> pass': "only reached when the issuer's JWKS cannot be fetched; the suite's issuer is "
    "up for the whole run, and the mandate does not say what a module answers during its issuer's outage",
    "auth.py:verify:constant:'kid' -> 'kidX'": _KEY_CACHE + " (the kid only decides whether to fetch again)",
    "auth.py:verify:constant:'' -> 'X'": "the default of a missing claim (typ or scope): neither '' nor 'X' is an "
    "access-token type or a scope of the collection, so both answers are the same",
    "auth.py:verify:remove raise:raise unauthorized('the token is not a well-formed JWT') -> pass": "the count of "
    "dots checked before decoding: joserfc refuses a compact token of one or four parts just the same (401)",
    "problems.py:<module>:constant:'vendor_module' -> 'vendor_moduleX'": "the logger's name",
    "problems.py:handle:remove call:logger.exception('unhandled error', exc_info=exc) -> pass": "logging only",
    "problems.py:handle:constant:400 -> 401": "FastAPI's RequestValidationError: the reference module declares no "
    "parameter FastAPI could refuse (every parameter is a string it parses itself), so it is never raised",
    "problems.py:<module>:constant:'https://vendor.example.kz/problems/' -> "
    "'https://vendor.example.kz/problems/X'": "the base of the module's problem type URIs: any stable URI conforms",
    "problems.py:body:constant:'-' -> '-X'": "the title of a problem is text for people",
    "problems.py:handle:return None:return render(Problem(400, 'bad-request', 'the request parameters are invalid'))"
    " -> return None": "FastAPI's RequestValidationError is never raised (see the 400 -> 401 mutant)",
    "problems.py:handle:constant:500 -> 501": "the status of an unexpected exception, which the reference module "
    "never raises under the suite (see the return None mutant of the same handler)",
    "store.py:parse_instant:constant:'Z' -> 'ZX'": "Python 3.11's datetime.fromisoformat reads a trailing Z itself",
    "store.py:etag_of:constant:True -> False": "sort_keys of the ETag's digest: a stored entity's key order never "
    "changes between reads, so its ETag is the same",
    "store.py:Query:constant:100 -> 101": "the default limit of a Query, which the module always sets from the request",
    "store.py:etag_of:constant:20 -> 21": "a longer digest prefix: an ETag is opaque, and still changes with the "
    "entity",
    "store.py:matches:return None:return False -> return None": "None is as false as False to the caller",
    "store.py:page:relational:len(matches) > query.limit -> len(matches) >= query.limit": "a next link on a full "
    "last page that leads to an empty page with next: null; every item is still visited exactly once, which is "
    "what QM-LIST-001 asks",
    "app.py:__init__:constant:'city' -> 'cityX'": "'city' then stays among the generic equality filters, which "
    "filter on the city exactly as the dedicated city filter does",
    "app.py:entity_response:constant:'' -> 'X'": "quote(..., safe='X'): X is an unreserved character that quote "
    "never escapes, so every Location is the same",
    "app.py:published:constant:'version' -> 'versionX'": "info.version then stays the mandate's 1.0.0, which is "
    "also the reference module's own version: the document reads the same",
    "app.py:lifespan:constant:5.0 -> 6.0": "the timeout of the module's JWKS fetches from an issuer that answers "
    "at once",
    "app.py:delete:constant:'DELETE' -> 'DELETEX'": "the method name only matters to the IF_MATCH_PUT_ONLY defect, "
    "which the reference module does not have",
    "auth.py:_key_set:relational:time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS -> time.monotonic() - "
    "self._fetched_at >= JWKS_REFETCH_SECONDS": _KEY_CACHE,
    "auth.py:_key_set:remove call:response.raise_for_status() -> pass": "only reached when the issuer's JWKS "
    "answers an error; the suite's issuer is up for the whole run (see the 503 mutants)",
    "auth.py:verify:remove raise:raise unauthorized(f\"the algorithm {header.get('alg')!r} is not accepted\") -> "
    "pass": "an early refusal only: jwt.decode(..., algorithms=ALGORITHMS) refuses every other algorithm (none, "
    "HS256) with the same 401",
    "store.py:delete:relational:self._entities.pop(entity_id, None) is not None -> self._entities.pop(entity_id, "
    "None) is None": "the result of Store.delete is not used (the route checked existence before)",
    "store.py:page:logical:more and items -> more or items": "a last page that still links to a next, empty page: "
    "legal ({items, next: url|null}), a client reading on gets [] and next null",
}

UNREACHED: dict[str, str] = {
    "app.py:_cursor:constant:'=' -> '=X'": "a real defect that depends on the data: a cursor whose base64 ends in "
    "X (1 in 64) loses that character; the suite's deterministic ids give no such cursor",
    "app.py:_after:constant:4 -> 5": "a real defect that depends on the data: padding counted modulo 5 is short for "
    "some cursor lengths only; the suite's cursors all have lengths it happens to pad enough",
    "store.py:_inside:constant:2 -> 3": "a real defect that depends on the data: a Point with an altitude would "
    "break the bbox filter; the suite seeds two-dimensional points only",
}
"""Surviving mutants that are real defects the suite's data does not reach, each with why. They count as
survivors in the kill rate (they are not equivalent); listing them keeps every survivor explained."""
"""Mutant key -> why no client can tell it from the reference module (from the survivors of bench runs)."""


@dataclass(frozen=True)
class Mutant:
    file: str
    line: int
    function: str
    operator: str
    before: str
    after: str
    index: int
    """Which site of this file (in AST walk order) the mutation applies to."""

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the file: file, function, operator and the changed code."""
        return f"{self.file}:{self.function}:{self.operator}:{self.before} -> {self.after}"

    def describe(self) -> str:
        return f"{self.file}:{self.line} in {self.function}: {self.operator}: {self.before}  ->  {self.after}"


_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINARY_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}


def _names(node: ast.AST) -> set[str]:
    out = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            out.add(child.id)
        elif isinstance(child, ast.Attribute):
            out.add(child.attr)
    return out


def _mentions_fault(node: ast.AST) -> bool:
    return bool(_names(node) & FAULT_NAMES)


def _fault_on(test: ast.expr) -> bool:
    """Whether ``test`` holds only with a defect switched on (so the code it guards is not the reference's)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_fault_on(value) for value in test.values)
    if isinstance(test, ast.Compare):
        return _mentions_fault(test) and all(isinstance(op, ast.In) for op in test.ops)
    if isinstance(test, ast.Name | ast.Attribute):
        return _mentions_fault(test)
    return False


class _Sites(ast.NodeVisitor):
    """Every mutation site of a module, in walk order, skipping defect-only code and docstrings."""

    def __init__(self) -> None:
        self.sites: list[tuple[ast.AST, str, str, int]] = []  # node, function, operator, variant
        self.function = "<module>"
        self.excluded: set[int] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in SKIPPED_FUNCTIONS:
            return
        outer, self.function = self.function, node.name
        body = node.body[1:] if ast.get_docstring(node) else node.body
        for statement in body:
            self.visit(statement)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 -- the visitor protocol's name

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.name in FAULT_NAMES or node.name in ("Fault",):
            return
        outer, self.function = self.function, node.name
        body = node.body[1:] if ast.get_docstring(node) else node.body
        for statement in body:
            self.visit(statement)
        self.function = outer

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(_mentions_fault(target) for target in node.targets):
            return  # the value of a defect switch (HOME_CITY = "astana") is the defect's, not the module's
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not _mentions_fault(node.target):
            self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _fault_on(node.test):
            for statement in node.orelse:
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        if _fault_on(node.test):
            self.visit(node.orelse)
            return
        if _mentions_fault(node.test):  # "x if Fault.X not in faults else <defect>": only x is the module's
            self.visit(node.body)
            return
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring of an attribute
        if isinstance(node.value, ast.Call | ast.Await) and not _mentions_fault(node):
            self.sites.append((node, self.function, "remove call", 0))
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        self.sites.append((node, self.function, "remove raise", 0))
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        returns_none = value is None or (isinstance(value, ast.Constant) and value.value is None)
        if value is not None and not returns_none and not _mentions_fault(value):
            self.sites.append((node, self.function, "return None", 0))
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if _mentions_fault(node):
            return  # a defect switch, constants and all
        if not _mentions_fault(node):
            for index, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    self.sites.append((node, self.function, "relational", index))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        if not _mentions_fault(node):
            self.sites.append((node, self.function, "logical", 0))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not) and not _mentions_fault(node):
            self.sites.append((node, self.function, "remove not", 0))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) in _BINARY_SWAPS and not _mentions_fault(node):
            self.sites.append((node, self.function, "arithmetic", 0))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # a problem's slug and detail are free text for people (any stable type URI conforms): only its status
        # code and keyword arguments are the module's behaviour
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in ("Problem", "unauthorized"):
            self.visit(node.func)
            for position, argument in enumerate(node.args):
                if name == "Problem" and position == 0:
                    self.visit(argument)
            for keyword in node.keywords:
                self.visit(keyword.value)
            return
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for value in node.values:  # the text of an f-string is a message; only its expressions are code
            if isinstance(value, ast.FormattedValue):
                self.visit(value.value)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool | int | float) or (isinstance(value, str) and " " not in value):
            # identifiers, media types, header names, claim names; prose (messages for people) is left alone
            self.sites.append((node, self.function, "constant", 0))


def _mutate_node(node: ast.AST, operator: str, variant: int) -> ast.AST:
    """A mutated copy of ``node``."""
    node = copy.deepcopy(node)
    if operator in {"remove call", "remove raise"}:
        return ast.Pass()
    if operator == "return None":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(None)
    elif operator == "relational":
        assert isinstance(node, ast.Compare)
        node.ops[variant] = _COMPARE_SWAPS[type(node.ops[variant])]()
    elif operator == "logical":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif operator == "remove not":
        assert isinstance(node, ast.UnaryOp)
        return node.operand
    elif operator == "arithmetic":
        assert isinstance(node, ast.BinOp)
        node.op = _BINARY_SWAPS[type(node.op)]()
    elif operator == "constant":
        assert isinstance(node, ast.Constant)
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, int | float):
            node.value = value + 1
        elif isinstance(value, str):
            node.value = value + "X" if value else "X"
    return node


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def visit(self, node: ast.AST) -> Any:
        if node is self.target:
            return self.replacement
        return super().visit(node)


def _sites(tree: ast.Module) -> list[tuple[ast.AST, str, str, int]]:
    visitor = _Sites()
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    for statement in body:
        visitor.visit(statement)
    return visitor.sites


def generate(folder: Path) -> Iterator[Mutant]:
    """Every mutant of the package in ``folder`` (``__init__.py`` excluded), file by file, in source order."""
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for index, (node, function, operator, variant) in enumerate(_sites(tree)):
            mutated = _mutate_node(node, operator, variant)
            before, after = ast.unparse(node), ast.unparse(mutated)
            if before == after:
                continue
            line = getattr(node, "lineno", 0)
            yield Mutant(
                path.name, line, function, operator, before.splitlines()[0][:100], after.splitlines()[0][:100], index
            )


def mutated_source(folder: Path, mutant: Mutant) -> ast.Module:
    tree = ast.parse((folder / mutant.file).read_text(encoding="utf-8"))
    node, _, operator, variant = _sites(tree)[mutant.index]
    mutated: ast.Module = _Replace(node, _mutate_node(node, operator, variant)).visit(tree)
    return ast.fix_missing_locations(mutated)


class _MutantLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, tree: ast.Module) -> None:
        super().__init__(fullname, path)
        self.tree = tree

    def get_code(self, fullname: str) -> Any:
        return compile(self.tree, self.path, "exec")


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, fullname: str, path: Path, tree: ast.Module) -> None:
        self.fullname, self.path, self.tree = fullname, path, tree

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> Any:
        if name != self.fullname:
            return None
        loader = _MutantLoader(name, str(self.path), self.tree)
        return importlib.util.spec_from_file_location(name, str(self.path), loader=loader)


def install(folder: Path, mutant: Mutant | None) -> None:
    """Make the next import of the package load ``mutant`` (in this process: call it in a forked child)."""
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    if mutant is not None:
        fullname = f"{PACKAGE}.{mutant.file.removesuffix('.py')}"
        sys.meta_path.insert(0, _MutantFinder(fullname, folder / mutant.file, mutated_source(folder, mutant)))
