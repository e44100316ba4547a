//! The tamper-evident audit log: events in canonical JSON, an RFC 6962
//! Merkle tree over them kept in SQLite (or PostgreSQL, [`postgres`], for a
//! team gateway's replicas) with O(log n) appends and proofs,
//! payloads apart from leaves (so they can be pruned), and C2SP checkpoints
//! signed with Ed25519 that anyone can verify offline with the public key.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod cosignature;
pub mod event;
pub mod export;
pub mod latest;
pub mod log;
pub mod merkle;
pub mod note;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod store;
pub mod writer;
