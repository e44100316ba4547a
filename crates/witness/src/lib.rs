//! A transparency-log witness (C2SP tlog-witness, <https://c2sp.org/tlog-witness>)
//! and the client a log uses to reach one.
//!
//! A witness keeps, for every log it is configured with, the latest
//! checkpoint it cosigned, and cosigns a new one only when the log's key
//! signed it and a consistency proof shows that it extends that checkpoint.
//! A log whose operator rolls it back (restores an older database and
//! appends other entries) can then no longer get cosignatures, and a
//! verifier that requires them notices.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use airlock_audit::cosignature::CosignatureSigner;
//! use airlock_audit::note::Verifier;
//! use airlock_witness::server::{Witness, serve};
//!
//! let key = CosignatureSigner::generate("witness.example/w1")?;
//! let log = Verifier::from_key_string("example.com/log+12345678+AQ...")?;
//! let witness = Arc::new(Witness::open("witness.db".as_ref(), key, vec![("example.com/log".into(), log)])?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7380").await?;
//! serve(listener, witness, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod client;
pub mod request;
pub mod server;
