"""sferum-audit integrity: tamper evidence for the audit log, independent of storage.

The log is committed to by an RFC 6962 / RFC 9162 Merkle tree whose heads are
published as C2SP signed checkpoints, the format used by Certificate
Transparency-style logs and Go's checksum database, so auditors can use
existing tools.

* ``merkle`` — hashing, the streaming :class:`MerkleTree`, proof generation.
* ``proof_check`` — the auditor's offline proof verifier, written independently.
* ``note`` — C2SP signed notes and Ed25519 verifier keys.
* ``checkpoint`` — checkpoint bodies: make, sign, parse, verify.
* ``keys`` — the log's signing key: load, create once, publish.
* ``leaf_encoding`` — the canonical leaf of a stored event (or of an empty position).
* ``settings`` — ``SFERUM_AUDIT_*`` integrity settings and the integrity folder's files.
* ``evidence`` — the leaf file, the checkpoint log and the sealer's saved state.
* ``store_reader`` — raw stored rows in global order, page by page, fast.
* ``sealer`` — follows the log, appends leaves, signs checkpoints (``serve`` runs it).
* ``verifier`` / ``scan`` — ``verify``: the store against the signed checkpoints.
* ``proofs`` — inclusion and consistency proof files; ``offline_check`` checks them
  with nothing but the file and the public key.
* ``erasure_act`` — the destruction act and log extract of an erasure (152-FZ).
"""
