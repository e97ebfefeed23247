"""Known-answer tests for merkle.py and proof_check.py.

Every vector here is copied from Google's reference implementation,
github.com/transparency-dev/merkle (the successor of the certificate-transparency
C++/Go `merkle_tree_test` vectors), and was not computed by our code:

* LEAF_INPUTS, NODE_HASHES, ROOTS, COMPACT_TREES: testonly/constants.go
  (LeafInputs, NodeHashes, RootHashes, CompactTrees).
* INCLUSION_VECTORS, CONSISTENCY_VECTORS and the probes in TestVerify*: proof/verify_test.go.
* INCLUSION_NODE_IDS, CONSISTENCY_NODE_IDS: proof/proof_test.go (TestInclusion,
  TestConsistency), restricted to trees of at most 8 leaves so that every node ID
  can be looked up in NODE_HASHES. A `rehash` group there is one proof element,
  the hashes folded as h = HashChildren(next, h) (proof/proof.go Nodes.Rehash,
  checked in TestRehash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from sferum_audit.integrity.merkle import (
    EMPTY_ROOT,
    MerkleProver,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
)
from sferum_audit.integrity.proof_check import (
    ProofError,
    hash_leaf,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


# testonly/constants.go LeafInputs()
LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# testonly/constants.go NodeHashes(): [level][index]
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# testonly/constants.go RootHashes(), indexed by tree size 0..8
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

NH = NODE_HASHES
# testonly/constants.go CompactTrees(), indexed by tree size 0..8
COMPACT_TREES = [
    [],
    [NH[0][0]],
    [NH[1][0]],
    [NH[1][0], NH[0][2]],
    [NH[2][0]],
    [NH[2][0], NH[0][4]],
    [NH[2][0], NH[1][2]],
    [NH[2][0], NH[1][2], NH[0][6]],
    [NH[3][0]],
]

# proof/verify_test.go inclusionProofs: (leaf, size, proof) with a 1-based leaf number.
INCLUSION_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# proof/verify_test.go consistencyProofs: (size1, size2, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# A node ID is (level, index); a rehash group is a list of IDs folded into one element.
NodeId = tuple[int, int]
Element = NodeId | list[NodeId]


def _rehash(*ids: NodeId) -> list[NodeId]:
    return list(ids)


# proof/proof_test.go TestInclusion, trees of size <= 8: (size, index, elements)
INCLUSION_NODE_IDS: list[tuple[int, int, list[Element]]] = [
    (1, 0, []),
    (2, 0, [(0, 1)]),
    (2, 1, [(0, 0)]),
    (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), _rehash((0, 6), (1, 2))]),  # b h l=hash(i,j)
    (7, 1, [(0, 0), (1, 1), _rehash((0, 6), (1, 2))]),  # a h l
    (7, 2, [(0, 3), (1, 0), _rehash((0, 6), (1, 2))]),  # d g l
    (7, 3, [(0, 2), (1, 0), _rehash((0, 6), (1, 2))]),  # c g l
    (7, 4, [(0, 5), (0, 6), (2, 0)]),  # f j k
    (7, 5, [(0, 4), (0, 6), (2, 0)]),  # e j k
    (7, 6, [(1, 2), (2, 0)]),  # i k
    (4, 2, [(0, 3), (1, 0)]),  # d g
    (5, 3, [(0, 2), (1, 0), (0, 4)]),  # c g e
    (6, 3, [(0, 2), (1, 0), (1, 2)]),  # c g i
    (6, 4, [(0, 5), (2, 0)]),  # f k
]

# proof/proof_test.go TestConsistency, trees of size <= 8: (size1, size2, elements)
CONSISTENCY_NODE_IDS: list[tuple[int, int, list[Element]]] = [
    (1, 2, [(0, 1)]),  # b
    (1, 4, [(0, 1), (1, 1)]),  # b h
    (1, 6, [(0, 1), (1, 1), (1, 2)]),  # b h i
    (2, 3, [(0, 2)]),  # c
    (2, 8, [(1, 1), (2, 1)]),  # h l
    (3, 7, [(0, 2), (0, 3), (1, 0), _rehash((0, 6), (1, 2))]),  # c d g l=hash(i,j)
    (4, 7, [_rehash((0, 6), (1, 2))]),  # l=hash(i,j)
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),  # e f j k
    (6, 7, [(1, 2), (0, 6), (2, 0)]),  # i j k
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),  # j leaf#7 i k
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(1, 1)]),  # h
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]),  # c d g e
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)]),  # c d g i
    (4, 6, [(1, 2)]),  # i
    (1, 7, [(0, 1), (1, 1), _rehash((0, 6), (1, 2))]),  # b h l
]


def _resolve(elements: list[Element]) -> list[bytes]:
    out = []
    for element in elements:
        if isinstance(element, list):
            (level, index), *rest = element
            acc = NODE_HASHES[level][index]
            for level, index in rest:
                acc = node_hash(NODE_HASHES[level][index], acc)
            out.append(acc)
        else:
            level, index = element
            out.append(NODE_HASHES[level][index])
    return out


def _accepted(check: Callable[..., None], *args: object) -> bool:
    try:
        check(*args)
    except ProofError:
        return False
    return True


LEAF_HASHES = [leaf_hash(d) for d in LEAF_INPUTS]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_TREE_HASH = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


# --- hashing and roots ----------------------------------------------------------


def test_leaf_hashes_match_node_hashes_level_0() -> None:
    assert NODE_HASHES[0] == LEAF_HASHES
    assert [hash_leaf(d) for d in LEAF_INPUTS] == NODE_HASHES[0]


def test_node_hashes_are_pairs_of_the_level_below() -> None:
    for level in range(1, 4):
        for i, expected in enumerate(NODE_HASHES[level]):
            below = NODE_HASHES[level - 1]
            assert node_hash(below[2 * i], below[2 * i + 1]) == expected


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == EMPTY_TREE_HASH == hashlib.sha256(b"").digest() == ROOTS[0]
    assert root_hash([]) == EMPTY_ROOT
    assert MerkleTree().root() == EMPTY_ROOT
    assert MerkleProver([]).root(0) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_roots_of_every_size(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size]
    assert MerkleProver(LEAF_HASHES).root(size) == ROOTS[size]


def test_streaming_tree_roots_and_compact_state_after_each_append() -> None:
    tree = MerkleTree()
    assert tree.state().hashes == ()
    for size, data in enumerate(LEAF_INPUTS, 1):
        assert tree.append_data(data) == size - 1
        assert tree.size == size
        assert tree.root() == ROOTS[size]
        assert list(tree.state().hashes) == COMPACT_TREES[size]


def test_size_8_root_is_the_published_one() -> None:
    assert root_hash(LEAF_HASHES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


# --- proof generation ---------------------------------------------------------------


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proof_vectors(leaf: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(leaf - 1, size, LEAF_HASHES) == proof


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proof_vectors(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(size1, size2, LEAF_HASHES) == proof


@pytest.mark.parametrize(("size", "index", "elements"), INCLUSION_NODE_IDS)
def test_inclusion_proof_node_ids(size: int, index: int, elements: list[Element]) -> None:
    assert inclusion_proof(index, size, LEAF_HASHES) == _resolve(elements)


@pytest.mark.parametrize(("size1", "size2", "elements"), CONSISTENCY_NODE_IDS)
def test_consistency_proof_node_ids(size1: int, size2: int, elements: list[Element]) -> None:
    assert consistency_proof(size1, size2, LEAF_HASHES) == _resolve(elements)


@pytest.mark.parametrize(("size", "index"), [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8), (9, 0)])
def test_inclusion_proof_rejects_bad_parameters(size: int, index: int) -> None:
    # (0,0) .. (7,8) from proof_test.go TestInclusion "Errors"; (9,0) is beyond the 8 leaves.
    with pytest.raises(ValueError):
        inclusion_proof(index, size, LEAF_HASHES)


@pytest.mark.parametrize(("size1", "size2"), [(5, 0), (9, 8), (3, 9), (-1, 2)])
def test_consistency_proof_rejects_bad_parameters(size1: int, size2: int) -> None:
    with pytest.raises(ValueError):
        consistency_proof(size1, size2, LEAF_HASHES)


# --- verification (proof/verify_test.go) -----------------------------------------------


def _corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """proof/verify_test.go corruptInclusionProof."""
    probes = [
        ("leafIndex - 1", index - 1, size, proof, root, leaf),
        ("leafIndex + 1", index + 1, size, proof, root, leaf),
        ("leafIndex ^ 2", index ^ 2, size, proof, root, leaf),
        ("treeSize * 2", index, size * 2, proof, root, leaf),
        ("treeSize / 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_TREE_HASH, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 3", index, size, wrong, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION_VECTORS)
def test_verify_inclusion_vectors_and_corruptions(leaf: int, size: int, proof: list[bytes]) -> None:
    index, root, lh = leaf - 1, ROOTS[size], LEAF_HASHES[leaf - 1]
    assert root_from_inclusion_proof(lh, index, size, proof) == root
    verify_inclusion(lh, index, size, proof, root)
    accepted = [
        desc
        for desc, p_index, p_size, p_proof, p_root, p_leaf in _corrupt_inclusion(
            index, size, proof, root, lh
        )
        if _accepted(verify_inclusion, p_leaf, p_index, p_size, p_proof, p_root)
    ]
    assert accepted == []


def test_verify_inclusion_single_entry() -> None:
    # proof/verify_test.go TestVerifyInclusionSingleEntry
    lh = hash_leaf(b"data")
    verify_inclusion(lh, 0, 1, [], lh)
    for root, leaf in [(lh, b""), (b"", lh), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 0, 1, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_verify_inclusion_rejects_invalid_root_or_leaf(index: int, size: int) -> None:
    # proof/verify_test.go TestVerifyInclusion probes
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_TREE_HASH), (SOME_HASH, EMPTY_TREE_HASH)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], root)


# proof/verify_test.go TestVerifyConsistency table. Go accepts short "don't care" roots;
# we insist on 32-byte hashes, so ROOT_A/ROOT_B stand in for them, and for size 0 we
# additionally insist on the empty-tree root (marked "stricter").
ROOT_A = hashlib.sha256(b"don't care 1").digest()
ROOT_B = hashlib.sha256(b"don't care 2").digest()
CONSISTENCY_TABLE = [
    (0, 0, ROOT_A, ROOT_B, [], False),
    (1, 1, ROOT_A, ROOT_B, [], False),
    # Sizes that are always consistent.
    (0, 0, ROOT_A, ROOT_A, [], False),  # stricter: ROOT_A is not the empty-tree root
    (0, 1, ROOT_A, ROOT_B, [], False),  # stricter: same
    (0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [], True),
    (0, 1, EMPTY_TREE_HASH, ROOT_B, [], True),
    (1, 1, ROOT_B, ROOT_B, [], True),
    # Time travel to the past.
    (1, 0, ROOT_A, ROOT_B, [], False),
    (2, 1, ROOT_A, ROOT_B, [], False),
    # Empty proof.
    (1, 2, ROOT_A, ROOT_B, [], False),
    # Roots don't match.
    (0, 0, EMPTY_TREE_HASH, ROOT_B, [], False),
    (1, 1, EMPTY_TREE_HASH, ROOT_B, [], False),
    # Roots match but the proof is not empty.
    (0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
    (0, 1, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
    (1, 1, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
]


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    CONSISTENCY_TABLE,
    ids=[f"case{i}" for i in range(len(CONSISTENCY_TABLE))],
)
def test_verify_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(size1, size2, root1, root2, proof)
    else:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, proof)


def _corrupt_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """proof/verify_test.go corruptConsistencyProof."""
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 4", size1, size2, root1, root2, wrong))
    return probes


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
def test_verify_consistency_vectors_and_corruptions(
    size1: int, size2: int, proof: list[bytes]
) -> None:
    root1, root2 = ROOTS[size1], ROOTS[size2]
    verify_consistency(size1, size2, root1, root2, proof)
    if not proof:  # Go only corrupts non-trivial proofs
        return
    accepted = [
        desc
        for desc, p1, p2, r1, r2, p_proof in _corrupt_consistency(size1, size2, root1, root2, proof)
        if _accepted(verify_consistency, p1, p2, r1, r2, p_proof)
    ]
    assert accepted == []
