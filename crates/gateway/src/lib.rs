//! The egress broker and team gateway.
