"""proof_check.py says *why* a proof fails: an auditor reads these messages."""

from __future__ import annotations

import pytest

from sferum_audit.integrity.merkle import MerkleProver, leaf_hash
from sferum_audit.integrity.proof_check import ProofError, verify_consistency, verify_inclusion

LEAVES = [leaf_hash(bytes([i])) for i in range(10)]
PROVER = MerkleProver(LEAVES)
ROOT_7 = PROVER.root(7)
ROOT_10 = PROVER.root(10)
PROOF_3_OF_7 = PROVER.inclusion_proof(3, 7)
PROOF_7_TO_10 = PROVER.consistency_proof(7, 10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((LEAVES[3], 3, 7, [*PROOF_3_OF_7, ROOT_7], ROOT_7), "too many"),
        ((LEAVES[3], 3, 7, PROOF_3_OF_7[:-1], ROOT_7), "too few"),
        ((LEAVES[3], 7, 7, PROOF_3_OF_7, ROOT_7), "not in a tree of size 7"),
        ((LEAVES[4], 3, 7, PROOF_3_OF_7, ROOT_7), "leads to root"),
        (
            (LEAVES[3], 3, 7, [b"short", *PROOF_3_OF_7[1:]], ROOT_7),
            r"inclusion path\[0\] is 5 bytes",
        ),
        ((LEAVES[3], 3, 7, PROOF_3_OF_7, b""), "root hash is 0 bytes"),
    ],
)
def test_inclusion_failures_are_explained(
    args: tuple[bytes, int, int, list[bytes], bytes], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_inclusion(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((7, 10, ROOT_7, ROOT_10, [*PROOF_7_TO_10, ROOT_7]), "too many"),
        ((7, 10, ROOT_7, ROOT_10, PROOF_7_TO_10[:-1]), "too few"),
        ((7, 10, ROOT_10, ROOT_10, PROOF_7_TO_10), "first root"),
        ((7, 10, ROOT_7, ROOT_7, PROOF_7_TO_10), "second root"),
        ((10, 7, ROOT_10, ROOT_7, []), "shrank"),
        ((7, 7, ROOT_7, ROOT_10, []), "two different roots"),
        ((7, 10, ROOT_7, ROOT_10, []), "empty consistency path"),
        ((0, 10, ROOT_7, ROOT_10, []), "not the root of the empty tree"),
    ],
)
def test_consistency_failures_are_explained(
    args: tuple[int, int, bytes, bytes, list[bytes]], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(*args)
