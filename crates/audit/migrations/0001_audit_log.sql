-- The audit log: the same tables as the SQLite store (store.rs).
-- entries: the canonical entry bytes a leaf hash covers, in log order from 0
-- (appends hold an advisory lock, so the sequence has no gaps).
CREATE TABLE entries (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),
    entry BYTEA NOT NULL,
    leaf BYTEA NOT NULL,
    time_ms BIGINT NOT NULL,
    session TEXT NOT NULL,
    kind TEXT NOT NULL
);
-- Payloads apart from leaves, so that a prune deletes them and proofs stay.
CREATE TABLE payloads (idx BIGINT PRIMARY KEY, payload BYTEA NOT NULL);
-- Complete Merkle tree nodes: O(log n) appends and proofs.
CREATE TABLE nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (level, idx));
-- Signed checkpoint notes by tree size.
CREATE TABLE checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL);
-- Witnesses' cosignatures of a checkpoint, one per witness and size.
CREATE TABLE cosignatures (size BIGINT NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness));
-- `audit show --session` and prunes by time.
CREATE INDEX entries_session ON entries (session, idx);
CREATE INDEX entries_time ON entries (time_ms);
