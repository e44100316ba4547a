//! The egress broker and team gateway.

pub mod egress;
