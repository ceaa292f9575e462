"""RFC 9162 Merkle tree arithmetic, checked against the RFC's recursive definitions for every small tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    mth,
    node_hash,
    perfect_pieces,
    range_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(f"entry {n}".encode()) for n in range(70)]


def rfc_mth(d: list[bytes]) -> bytes:
    """MTH written as in RFC 9162 2.1.1 over raw entries (the leaf hash inside)."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:])).digest()


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [rfc_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


ENTRIES = [f"entry {n}".encode() for n in range(70)]


def from_leaves(start: int, end: int) -> bytes:
    return mth(LEAVES[start:end])


def test_tree_hash_matches_the_rfc_definition() -> None:
    assert mth([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for size in range(1, 70):
        assert mth(LEAVES[:size]) == rfc_mth(ENTRIES[:size]), size


def test_the_rfc_example_tree_of_seven() -> None:
    # RFC 9162 2.1.5: the tree of seven leaves d0..d6 and its named nodes.
    a, b, c, d, e, f, j = (LEAVES[i] for i in range(7))
    g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k = node_hash(g, h)
    ell = node_hash(i, j)
    assert mth(LEAVES[:7]) == node_hash(k, ell)
    assert [from_leaves(*r) for r in inclusion_ranges(0, 7)] == [b, h, ell]  # "the inclusion proof for a is [b, h, l]"
    assert [from_leaves(*r) for r in inclusion_ranges(3, 7)] == [c, g, ell]  # for d: [c, g, l]
    assert [from_leaves(*r) for r in inclusion_ranges(4, 7)] == [f, j, k]  # for e: [f, j, k]
    assert [from_leaves(*r) for r in consistency_ranges(3, 7)] == [c, d, g, ell]  # hash0 -> hash: [c, d, g, l]
    assert [from_leaves(*r) for r in consistency_ranges(4, 7)] == [ell]  # hash1 -> hash: [l]
    assert [from_leaves(*r) for r in consistency_ranges(6, 7)] == [i, j, k]  # hash2 -> hash: [i, j, k]


@pytest.mark.parametrize("size", range(1, 40))
def test_inclusion_proofs_match_path_and_verify(size: int) -> None:
    root = mth(LEAVES[:size])
    for index in range(size):
        proof = [from_leaves(*r) for r in inclusion_ranges(index, size)]
        assert proof == rfc_path(index, ENTRIES[:size])
        assert verify_inclusion(LEAVES[index], index, size, proof, root)
        assert not verify_inclusion(LEAVES[index + 1], index, size, proof, root), "another leaf"
        assert not verify_inclusion(LEAVES[index], index, size, proof, leaf_hash(b"x")), "another root"
        if proof:
            assert not verify_inclusion(LEAVES[index], index, size, proof[:-1], root), "a shortened proof"


@pytest.mark.parametrize("second", range(1, 40))
def test_consistency_proofs_match_proof_and_verify(second: int) -> None:
    second_root = mth(LEAVES[:second])
    for first in range(1, second + 1):
        proof = [from_leaves(*r) for r in consistency_ranges(first, second)]
        assert proof == (rfc_subproof(first, ENTRIES[:second], True) if first < second else [])
        first_root = mth(LEAVES[:first])
        assert verify_consistency(first, second, first_root, second_root, proof)
        if first < second:
            forged = mth([*LEAVES[: first - 1], leaf_hash(b"rewritten")])
            assert not verify_consistency(first, second, forged, second_root, proof), "a rewritten first tree"
            assert not verify_consistency(first, second, first_root, forged, proof), "another second tree"
            assert not verify_consistency(first, second, first_root, second_root, proof[1:]), "a shortened proof"


def test_refusals() -> None:
    with pytest.raises(ProofError):
        inclusion_ranges(5, 5)
    with pytest.raises(ProofError):
        consistency_ranges(6, 5)
    assert consistency_ranges(0, 5) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, mth(LEAVES[:5]), [])
    assert not verify_consistency(5, 4, mth(LEAVES[:5]), mth(LEAVES[:4]), [])
    assert not verify_consistency(3, 3, mth(LEAVES[:3]), mth(LEAVES[:2]), [])
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)


@settings(deadline=None, max_examples=60)  # no per-example deadline: the suite runs on shared, loaded machines
@given(st.integers(min_value=1, max_value=3000), st.data())
def test_property_any_two_sizes(second: int, data: st.DataObject) -> None:
    """Random trees up to 3,000 leaves: proofs from stored complete subtrees verify, and only the right roots do."""
    leaves = [leaf_hash(n.to_bytes(4, "big")) for n in range(second)]
    frontier = Frontier.empty()
    nodes: dict[tuple[int, int], bytes] = {}
    roots = [EMPTY_ROOT]
    for leaf in leaves:
        for level, index, value in frontier.append(leaf):
            nodes[(level, index)] = value
        roots.append(frontier.root())

    def stored(start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        return nodes[(level, start >> level)]

    first = data.draw(st.integers(min_value=0, max_value=second))
    index = data.draw(st.integers(min_value=0, max_value=second - 1))
    assert roots[second] == mth(leaves)
    proof = [range_hash(s, e, stored) for s, e in consistency_ranges(first, second)]
    assert verify_consistency(first, second, roots[first], roots[second], proof)
    if 0 < first < second:
        assert not verify_consistency(first, second, roots[first - 1], roots[second], proof)
    path = [range_hash(s, e, stored) for s, e in inclusion_ranges(index, second)]
    assert verify_inclusion(leaves[index], index, second, path, roots[second])
    for start, end in consistency_ranges(first, second) + inclusion_ranges(index, second):
        assert all((e - s) & (e - s - 1) == 0 and s % (e - s) == 0 for s, e in perfect_pieces(start, end))


def test_frontier_resumes_from_its_pending_subtrees() -> None:
    whole = Frontier.empty()
    nodes: dict[tuple[int, int], bytes] = {}
    for leaf in LEAVES[:45]:
        for level, index, value in whole.append(leaf):
            nodes[(level, index)] = value
    resumed = Frontier(45, {level: nodes[(level, index)] for level, index in Frontier.levels(45)})
    for leaf in LEAVES[45:]:
        resumed.append(leaf)
    assert resumed.root() == mth(LEAVES)
