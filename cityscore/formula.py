"""What one change contributes to a KPI: evaluating the book's declarative formula on one entity.

A contribution is an :data:`Item` -- ``(value, hit, key)`` -- placed in a period by the entity's time. Values
are integers in a base unit (milliseconds, tiyn), so adding and later removing them is exact in any order.

    >>> change = Change(1, "urn:ngsi-ld:PaymentTransaction:astana:1", "PaymentTransaction",
    ...                 "payment-transactions", "astana",
    ...                 {"status": "ACSC", "amount": "1500.50", "dateBooked": "2026-12-04T10:00:00+05:00"}, 1.8e9)
    >>> when, group, item = evaluate(KpiBook.load().get("payments.amount"), change)
    >>> when.isoformat(), group, item
    ('2026-12-04T10:00:00+05:00', None, (150050, True, None))

A formula is compiled once into a :class:`Contribution`, a Python function written from the formula
(:class:`Source`): the engine evaluates every formula on every change of a backfill, so the book's
``if op == ...`` dispatch is done when the book is read, not per change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from cityscore.book import Condition, Formula, Kpi, KpiBook
from cityscore.periods import HOUR_MS, epoch_ms

__all__ = ["Change", "Contribution", "Instant", "Item", "KpiBook", "compile_formula", "evaluate"]

Item = tuple[int | None, bool, tuple[Any, ...] | None]
"""(value in the base unit or None, passes numeratorWhere, distinct key or None)."""

Instant = tuple[datetime, int]
"""An aware moment and the same moment in milliseconds since the epoch (computed once, used by several KPIs)."""

Found = tuple[Instant, str | None, Item]
"""Where a change counts for a formula: its instant, its group (or None) and its item."""

Contribution = Callable[["Change"], Found | None]
"""A compiled formula: where a change counts, or None."""


class Change(NamedTuple):
    """One entry of the hub's change feed as the engine reads it; ``payload`` is None for a deletion.

    A named tuple rather than a dataclass: a backfill builds one per stored entity, and a tuple is the cheapest
    immutable record Python has."""

    seq: int
    id: str
    type: str
    collection: str
    city: str
    payload: dict[str, Any] | None
    received_at: float


@functools.lru_cache(maxsize=1024)
def _from_timestamp(seconds: float) -> Instant:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment, epoch_ms(moment)


def received(change: Change) -> datetime:
    # Through a datetime (microseconds), exactly as a reader of the public feed's receivedAt sees it.
    return _from_timestamp(change.received_at)[0]


@functools.lru_cache(maxsize=8192)
def _parse(value: str) -> Instant | None:
    """An aware date-time; cached, since the KPIs of one entity read the same fields."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment, epoch_ms(moment)) if moment.tzinfo is not None else None


# -- compiling a formula ---------------------------------------------------------------------------------
# A formula becomes Python source, compiled once when the book is read: the engine evaluates every formula on
# every change of a backfill, and a chain of small closures (one per field, test and key part) cost a Python call
# for each of them. The ledger goes one step further and writes one function per entity type that evaluates every
# formula reading that type (see cityscore.ledger): a field is read once for all of them, a moment parsed once.
# Every value of the book reaches the source as a name bound in the function's namespace, never as text.

_NUMBER = (int, float)
_SCALAR = (str, int, float, bool)
_GROUP = (str, int)
_UNREAD = object()
"""What a moment's local holds before the moment is first needed."""


def _decimal_units(raw: Any) -> int | None:
    """A decimal amount (a string or number) in hundredths, when it is a whole number of them.

    An amount written as ASCII digits with two decimals (``"1500.50"``, as payments are) is read without a Decimal:
    the same integer (at most 19 digits, well inside the Decimal context's 28), a third of the cost."""
    if type(raw) is str and len(raw) <= _PLAIN_LENGTH and raw[-3:-2] == ".":
        digits = raw[:-3] + raw[-2:]
        if digits.isdigit() and digits.isascii():
            return int(digits)
    try:
        amount = Decimal(str(raw)) * 100
    except InvalidOperation:
        return None
    return int(amount) if amount == amount.to_integral_value() else None


_PLAIN_LENGTH = 20
"""The longest amount :func:`_decimal_units` reads as plain digits."""


class Counted(NamedTuple):
    """Where a change counts for a formula, as expressions in the generated source."""

    when: str
    """The instant."""
    group: str
    item: str
    """The item, ``(value, hit, key)``."""


Placement = Callable[["Source", Counted], None]
"""Writes what to do where a formula counts."""


class Source:
    """The source of one generated function: its lines, the constants it names, the payload fields and moments it
    reads. Payload fields are read at the top (:meth:`read`), once; a moment is parsed where it is first needed
    and kept for every formula after it (``_UNREAD`` until then).

    >>> source = Source("booked(change)")
    >>> source.emit("payload = change[5]")
    >>> source.read({"dateBooked"})
    >>> source.emit(f"return {source.moment('dateBooked')}")
    >>> booked = source.compile("booked")
    >>> booked(Change(1, "", "", "", "", {"dateBooked": "2026-12-04T10:00:00+05:00"}, 0))[1]
    1796360400000
    """

    def __init__(self, signature: str) -> None:
        self.lines = [f"def {signature}:"]
        self.names: dict[str, Any] = {
            "_parse": _parse,
            "_from_timestamp": _from_timestamp,
            "received": received,
            "_decimal_units": _decimal_units,
            "_NUMBER": _NUMBER,
            "_SCALAR": _SCALAR,
            "_GROUP": _GROUP,
            "_UNREAD": _UNREAD,
            "HOUR_MS": HOUR_MS,
        }
        self.indent = 1
        self.inits: list[str] = []
        """The moments' locals, set up after the field reads (at ``self.mark``)."""
        self.mark = 1
        self.fields: dict[str, str] = {}
        self.moments: dict[str, str] = {}
        self._count = 0

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def const(self, value: Any) -> str:
        """A name for ``value`` in the function's namespace."""
        name = f"c{len(self.names)}"
        self.names[name] = value
        return name

    def local(self, prefix: str = "v") -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def read(self, names: set[str]) -> None:
        """Read the payload fields among ``names`` into locals (at the top, before any formula's branches)."""
        for name in sorted(names - FEED_FIELDS - set(self.fields)):
            var = self.fields[name] = self.local("f")
            self.emit(f"{var} = payload.get({self.const(name)})")
        self.mark = len(self.lines)

    def field(self, name: str) -> str:
        """An expression for the raw value of ``name``: a payload field read by :meth:`read`, or a feed field."""
        if name == "$received":
            return "received(change)"
        if name == "$feed":
            return "change[3]"
        return self.fields[name]

    def moment(self, name: str) -> str:
        """An expression for the instant ``name`` holds, or None (parsed here if no formula before needed it)."""
        if name == "$received":
            return "_from_timestamp(change[6])"
        raw = self.field(name)
        parse = f"(_parse({raw}) if isinstance({raw}, str) else None)"
        if name == "$feed":
            return parse
        var = self.moments.get(name)
        if var is None:
            var = self.moments[name] = self.local("m")
            self.inits.append(f"    {var} = _UNREAD")
        self.emit(f"if {var} is _UNREAD:")
        self.emit(f"    {var} = {parse}")
        return var

    def first_moment(self, names: tuple[str, ...]) -> str:
        """A local holding the first of ``names`` that holds an instant (None when none does)."""
        var = self.local()
        self.emit(f"{var} = {self.moment(names[0])}")
        for name in names[1:]:
            self.emit(f"if {var} is None:")
            self.indent += 1
            self.emit(f"{var} = {self.moment(name)}")
            self.indent -= 1
        return var

    def test(self, condition: Condition) -> str:
        """A condition as an expression; an absent field (None) fails every operator but ``exists``' negation."""
        raw = self.field(condition.field)
        if condition.op == "exists":
            return f"{raw} is not None"
        expected = self.const(condition.value)
        if condition.op in ("eq", "ne", "in"):
            compare = {"eq": "==", "ne": "!=", "in": "in"}[condition.op]
            return f"({raw} is not None and bool({raw} {compare} {expected}))"
        order = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[condition.op]
        return (
            f"({raw} is not None and not isinstance({raw}, bool) and isinstance({raw}, _NUMBER)"
            f" and bool({raw} {order} {expected}))"
        )

    def open(self, condition: str) -> None:
        """Go on only where ``condition`` holds (closed by :meth:`formula`)."""
        self.emit(f"if {condition}:")
        self.indent += 1

    def formula(self, formula: Formula, place: Placement) -> None:
        """Evaluate ``formula`` on the change (of a type it reads, live) and call ``place`` where it counts.
        The payload fields it reads must have been read (:meth:`read` with :func:`fields`)."""
        base = self.indent
        when = self.first_moment(formula.time)
        self.open(f"{when} is not None")
        for condition in formula.where:
            self.open(self.test(condition))
        value = "None" if formula.value is None else self._value(formula.value, formula.time, when)
        key = "None" if not formula.key else self._key(formula.key, formula.time, when)
        hit = "True"
        if formula.numerator_where:
            tests = [self.test(condition) for condition in formula.numerator_where]
            hit = tests[0] if len(tests) == 1 else f"bool({' and '.join(tests)})"
        group = "None"
        if formula.group_by is not None:
            raw = self.field(formula.group_by)
            group = f"(str({raw}) if isinstance({raw}, _GROUP) and not isinstance({raw}, bool) else None)"
        place(self, Counted(when, group, f"({value}, {hit}, {key})"))
        self.indent = base

    def _value(self, spec: dict[str, Any], time: tuple[str, ...], when: str) -> str:
        """A local holding the value (code that goes on only where there is one)."""
        value = self.local()
        if "received_minus" in spec:
            observed = when
            if tuple(spec["received_minus"]) != time:
                observed = self.first_moment(tuple(spec["received_minus"]))
                self.open(f"{observed} is not None")
            self.emit(f"{value} = _from_timestamp(change[6])[1] - {observed}[1]")
        elif "difference" in spec:
            later_name, earlier_name = spec["difference"]
            earlier = self.local()
            self.emit(f"{earlier} = {self.moment(earlier_name)}")
            later = when
            if (later_name,) != time:
                later = self.local()
                self.emit(f"{later} = {self.moment(later_name)}")
            self.open(f"{later} is not None and {earlier} is not None")
            self.emit(f"{value} = {later}[1] - {earlier}[1]")
        else:
            self.emit(f"{value} = _decimal_units({self.field(spec['decimal'])})")
            self.open(f"{value} is not None")
        return value

    def _key(self, parts: tuple[str, ...], time: tuple[str, ...], when: str) -> str:
        """The key as a tuple expression (code that goes on only where no part is missing)."""
        names = []
        for part in parts:
            var = self.local()
            if part.startswith("hour:") and (part[5:],) == time:
                self.emit(f"{var} = {when}[1] // HOUR_MS")
            elif part.startswith("hour:"):
                moment = self.moment(part[5:])
                self.open(f"{moment} is not None")
                self.emit(f"{var} = {moment}[1] // HOUR_MS")
            else:
                self.emit(f"{var} = {self.field(part)}")
                self.open(f"isinstance({var}, _SCALAR)")
            names.append(var)
        return "(" + ", ".join(names) + ",)"

    def compile(self, name: str) -> Any:
        """The function, compiled; its source is its ``__doc__``, for a reader in a debugger."""
        text = "\n".join([*self.lines[: self.mark], *self.inits, *self.lines[self.mark :]]) + "\n"
        exec(compile(text, f"<cityscore {name}>", "exec"), self.names)  # noqa: S102 -- values are bound names
        function = self.names[name]
        function.__doc__ = text
        return function


def _found(source: Source, counted: Counted) -> None:
    source.emit(f"return {counted.when}, {counted.group}, {counted.item}")


def compile_formula(formula: Formula) -> Contribution:
    """``formula`` as one function of a change: its instant, group and item, or None when the formula's
    filters leave the change out or a field it needs is missing (a deletion and other types count for nothing)."""
    source = Source("contribution(change)")
    source.emit("payload = change[5]")
    source.emit(f"if payload is None or change[2] not in {source.const(frozenset(formula.reads))}:")
    source.emit("    return None")
    source.read(fields(formula))
    source.formula(formula, _found)
    source.emit("return None")
    contribution: Contribution = source.compile("contribution")
    if not fields(formula) <= FEED_FIELDS:
        return contribution

    # A formula of the feed's own fields alone (open-data.freshness) gives every live change of one type and
    # collection received in one write the same contribution: evaluate it once per write.
    @functools.lru_cache(maxsize=256)
    def per_write(type_name: str, collection: str, received_at: float) -> Found | None:
        return contribution(Change(0, "", type_name, collection, "", {}, received_at))

    def feed_only(change: Change) -> Found | None:
        return None if change.payload is None else per_write(change.type, change.collection, change.received_at)

    return feed_only


FEED_FIELDS = frozenset({"$received", "$feed"})
"""The fields a formula reads from the change feed rather than from the entity."""


def fields(formula: Formula) -> set[str]:
    """Every field ``formula`` reads."""
    names = {*formula.time, *(c.field for c in (*formula.where, *formula.numerator_where))}
    spec = formula.value or {}
    names.update(spec.get("received_minus", ()), spec.get("difference", ()))
    if "decimal" in spec:
        names.add(spec["decimal"])
    if "received_minus" in spec:
        names.add("$received")
    names.update(part.removeprefix("hour:") for part in formula.key)
    if formula.group_by is not None:
        names.add(formula.group_by)
    return names


def evaluate(kpi: Kpi, change: Change) -> tuple[datetime, str | None, Item] | None:
    """Where ``change`` (a live entity of a type the KPI reads) counts for ``kpi``: its moment, group and item;
    None when the formula's filters leave it out or a field it needs is missing. Compiles the formula on every
    call: for one-off questions; the ledger keeps its compiled formulas."""
    found = compile_formula(kpi.formula)(change)
    if found is None:
        return None
    (moment, _), group, item = found
    return moment, group, item
