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
"""
