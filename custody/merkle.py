"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0, section 2.1), over the audit log.

Guarantees:
- leaf = SHA-256(0x00 || data) and node = SHA-256(0x01 || left || right); the tree over n leaves
  splits at the largest power of two below n, so its root (the "tree head") is the one every
  RFC 9162 implementation computes for the same leaves;
- the tree is kept as its complete subtrees: node (level, index) is the root over the leaves
  [index * 2**level, (index + 1) * 2**level). A node never changes once the leaves under it
  exist, so the stored nodes only grow, and any proof for any earlier size can still be made;
- the "frontier" is the list of complete subtrees that make up the tree today, largest first
  (one per set bit of the size); appending a leaf merges it with the frontier's trailing
  subtrees, writing one node per level it climbs (about two per leaf, amortised);
- inclusion and consistency proofs are lists of subtree hashes made from stored nodes, and are
  checked here exactly as RFC 9162 sections 2.1.3.2 and 2.1.4.2 say (tools/verify_bundle.py holds
  the same two checks, with the standard library only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from operator import methodcaller

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_digest = methodcaller("digest")
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# -- Building ------------------------------------------------------------------------------------


def perfect_parts(lo: int, hi: int) -> list[tuple[int, int]]:
    """The complete subtrees (level, index) whose fold is the hash of leaves [lo, hi), largest
    first. Every range a proof asks for starts at a multiple of its largest part."""
    parts = []
    position = lo
    for level in range((hi - lo).bit_length() - 1, -1, -1):
        if (hi - lo) >> level & 1:
            if position % (1 << level):
                raise ValueError(f"leaves [{lo}, {hi}) are not a subtree of the log")
            parts.append((level, position >> level))
            position += 1 << level
    return parts


def fold(hashes: list[bytes]) -> bytes:
    """The root over complete subtrees given largest first (the tree's right edge folds in)."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def frontier_hashes(frontier: bytes, size: int) -> list[bytes]:
    if len(frontier) != HASH_SIZE * size.bit_count():
        raise ValueError(f"the tree's frontier does not fit a tree of {size} leaves")
    return [frontier[i : i + HASH_SIZE] for i in range(0, len(frontier), HASH_SIZE)]


def frontier_root(frontier: bytes, size: int) -> bytes:
    return fold(frontier_hashes(frontier, size))


def append_leaf(
    frontier: bytes, size: int, leaf: bytes
) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """Add the leaf hash at index `size`: the new frontier and the nodes that became complete
    (the leaf itself, then one per level it climbs)."""
    nodes = [(0, size, leaf)]
    node, level = leaf, 0
    while size >> level & 1:
        left, frontier = frontier[-HASH_SIZE:], frontier[:-HASH_SIZE]
        node = node_hash(left, node)
        level += 1
        nodes.append((level, size >> level, node))
    return frontier + node, nodes


def append_leaves(
    frontier: bytes, size: int, data: bytes
) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """append_leaf for many leaves at once, from their data (32 bytes each: the events' hashes)
    rather than their leaf hashes: the new frontier and every node that became complete, in the
    order append_leaf one by one gives them."""
    leaves = map(
        _digest,
        map(_sha256, [b"\x00" + data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]),
    )
    nodes = []
    for node in leaves:
        nodes.append((0, size, node))
        level = 0
        while size >> level & 1:
            node = _sha256(b"\x01" + frontier[-HASH_SIZE:] + node).digest()
            frontier = frontier[:-HASH_SIZE]
            level += 1
            nodes.append((level, size >> level, node))
        frontier += node
        size += 1
    return frontier, nodes


def subtree_levels(first: int, data: bytes) -> list[bytes]:
    """Every complete node over the event hashes `data` (32 bytes each), which are the leaves
    from index `first` on; `first` must be a multiple of the block's size rounded up to a power
    of two. Returns, per level, the nodes' hashes concatenated in index order."""
    count = len(data) // HASH_SIZE
    if count and first % (1 << (count - 1).bit_length()):
        raise ValueError("a block of leaves must start on its own boundary")
    leaves = [b"\x00" + data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
    return levels_above(b"".join(map(_digest, map(_sha256, leaves))))


def levels_above(level: bytes) -> list[bytes]:
    """The given level of nodes (concatenated, starting on a boundary of their own count rounded
    up to a power of two) and every complete level above it."""
    levels = [level]
    while len(level) >= 2 * HASH_SIZE:
        pairs = [b"\x01" + level[i : i + 64] for i in range(0, len(level) - 63, 64)]
        level = b"".join(map(_digest, map(_sha256, pairs)))
        levels.append(level)
    return levels


# -- Proofs -------------------------------------------------------------------------------------

Ranges = list[tuple[int, int]]


def inclusion_ranges(index: int, size: int) -> Ranges:
    """The leaf ranges whose hashes form the inclusion proof of leaf `index` in a tree of
    `size` leaves (RFC 9162 2.1.3.1, PATH), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    out: Ranges = []

    def path(m: int, lo: int, hi: int) -> None:
        n = hi - lo
        if n == 1:
            return
        k = _split(n)
        if m < k:
            path(m, lo, lo + k)
            out.append((lo + k, hi))
        else:
            path(m - k, lo + k, hi)
            out.append((lo, lo + k))

    path(index, 0, size)
    return out


def consistency_ranges(old: int, new: int) -> Ranges:
    """The leaf ranges whose hashes form the consistency proof from a tree of `old` leaves to
    one of `new` leaves (RFC 9162 2.1.4.1, SUBPROOF), in proof order."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    out: Ranges = []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> None:
        n = hi - lo
        if m == n:
            if not whole:
                out.append((lo, hi))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, whole)
            out.append((lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            out.append((lo, lo + k))

    subproof(old, 0, new, True)
    return out


def resolve(
    ranges: Iterable[Ranges], nodes: Callable[[set[tuple[int, int]]], dict]
) -> list[list[bytes]]:
    """The hashes of many proofs' ranges, fetching every stored node they need in one call."""
    ranges = list(ranges)
    wanted = {part for proof in ranges for lo, hi in proof for part in perfect_parts(lo, hi)}
    found = nodes(wanted) if wanted else {}
    missing = wanted - found.keys()
    if missing:
        raise LookupError(
            f"{len(missing)} nodes of the audit tree are missing, e.g. {min(missing)}"
        )
    return [
        [fold([found[p] for p in perfect_parts(lo, hi)]) for lo, hi in proof] for proof in ranges
    ]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """RFC 9162 2.1.4.2 (and the trivial cases: an empty tree, or two equal sizes)."""
    if old == 0:
        return not proof
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
