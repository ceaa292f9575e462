"""RFC 9162 (Certificate Transparency 2.0) Merkle trees: tree hashes, inclusion and consistency proofs.

A small implementation of section 2.1 rather than a library: the hub keeps its tree in the database (only the
nodes of complete subtrees, written once at checkpoint time), so proofs are built from stored nodes, and what is
needed here is the RFC's arithmetic over ranges, not an in-memory tree. The tests check every function against
the RFC's recursive definitions (MTH, PATH, PROOF) for all small sizes.

    leaves = [leaf_hash(entry) for entry in (b"a", b"b", b"c")]
    root = mth(leaves)
    proof = [mth(leaves[start:end]) for start, end in consistency_ranges(2, 3)]
    verify_consistency(2, 3, mth(leaves[:2]), root, proof)      # True

Hashes are raw 32-byte ``bytes`` here; the hub shows them as lowercase hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 section 2.1.1)."""


class ProofError(ValueError):
    """A proof was asked for sizes or indexes outside the tree."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1): where the RFC splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def is_perfect(start: int, end: int) -> bool:
    """Whether leaves ``[start, end)`` form one complete subtree: a power-of-two size, aligned on it."""
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def mth(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of *leaf hashes* (section 2.1.1), by the RFC's recursion."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose tree hashes make PATH(index, D[0:size]) (section 2.1.3.1), leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose tree hashes make PROOF(first, D[0:second]) (section 2.1.4.1).

    Empty when ``first`` is 0 or equals ``second`` (nothing to prove beyond comparing roots)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from a tree of {first} to a tree of {second}")
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, whole = 0, second, True  # SUBPROOF(m, D[start:end], b), with m counted from start
    m = first
    while True:
        if m == end - start:
            if not whole:
                ranges.append((start, end))
            break
        k = split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    return ranges[::-1]


def range_hash(start: int, end: int, perfect: Callable[[int, int], bytes]) -> bytes:
    """MTH(D[start:end]) for a range the RFC's recursion produces, from ``perfect(start, end)`` complete subtrees.

    Every range in :func:`inclusion_ranges` and :func:`consistency_ranges` starts on a boundary of the largest
    power of two not above its size, so it is a run of complete subtrees joined right to left."""
    if is_perfect(start, end):
        return perfect(start, end)
    k = split(end - start)
    return node_hash(perfect(start, start + k), range_hash(start + k, end, perfect))


def perfect_pieces(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees :func:`range_hash` reads for ``[start, end)``."""
    pieces = []
    while not is_perfect(start, end):
        k = split(end - start)
        pieces.append((start, start + k))
        start += k
    pieces.append((start, end))
    return pieces


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Section 2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """Section 2.1.4.2: does ``proof`` show the tree of ``second`` extends the tree of ``first``?"""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


class Frontier:
    """The right edge of a growing tree: one pending complete subtree per set bit of the size.

    Appending a leaf costs O(1) amortised and reports the complete subtrees it closes (to store them); the root
    of the current size is the pending subtrees folded right to left, O(log n).

        frontier = Frontier.empty()
        for entry in (b"a", b"b", b"c"):
            closed = frontier.append(leaf_hash(entry))   # [(level, index, hash), ...]
        frontier.root() == mth([leaf_hash(e) for e in (b"a", b"b", b"c")])
    """

    def __init__(self, size: int, pending: dict[int, bytes]) -> None:
        self.size = size
        self.pending = pending  # level -> hash of the complete subtree waiting for its right sibling

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, {})

    @staticmethod
    def levels(size: int) -> list[tuple[int, int]]:
        """``(level, index)`` of the pending subtrees of a tree of ``size``: whose hashes resume a frontier."""
        return [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        closed = [(0, self.size, leaf)]
        index, level, current = self.size, 0, leaf
        while index & 1:
            current = node_hash(self.pending.pop(level), current)
            index, level = index >> 1, level + 1
            closed.append((level, index, current))
        self.pending[level] = current
        self.size += 1
        return closed

    def root(self) -> bytes:
        if self.size == 0:
            return EMPTY_ROOT
        root: bytes | None = None
        for level in sorted(self.pending):
            root = self.pending[level] if root is None else node_hash(self.pending[level], root)
        return root if root is not None else EMPTY_ROOT
