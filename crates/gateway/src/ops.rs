//! Running the gateway as a service: readiness, drain, reload, log format.
//!
//! - `GET /healthz`: 200 while the process serves. `GET /readyz`: 200 only
//!   when the audit log can take appends (the writer answers after a read of
//!   its store, and no group commit failed in the last seconds) and the
//!   gateway is not draining; 503 otherwise. Neither needs a key, neither is
//!   recorded.
//! - Drain ([`LiveGateway::drain`]): `/readyz` turns 503 at once while
//!   requests are still served, so that a load balancer's health check takes
//!   the replica out; the caller then stops the server, which finishes the
//!   requests in flight (streams included) for up to `gateway.drain_timeout_secs`.
//! - Reload ([`LiveGateway::reload`]): a new configuration serves every
//!   request that starts after it, on open connections too; a request in
//!   flight keeps the gateway (and configuration) it started with. Callers'
//!   state (placeholders, requests in flight, conversations) carries over.
//!   What cannot change without a restart is named ([`needs_restart`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use airlock_audit::writer::AuditHandle;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::config::GatewayConfig;
use crate::server::Gateway;
use crate::telemetry::Telemetry;

/// How the gateway's logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line (for log collectors).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("log format {s:?}: expected \"text\" or \"json\"")),
        }
    }
}

/// The gateway's state as operators see it, shared by every configuration
/// a reload makes: whether it drains, and where its telemetry goes.
#[derive(Debug, Default)]
pub struct Operations {
    draining: AtomicBool,
    telemetry: OnceLock<Arc<Telemetry>>,
}

impl Operations {
    /// Whether the gateway is draining (`/readyz` answers 503).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The telemetry, when configured.
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.telemetry.get().map(|t| &**t)
    }

    /// Attaches telemetry (once; a second call is ignored).
    pub fn set_telemetry(&self, telemetry: Arc<Telemetry>) {
        let _ = self.telemetry.set(telemetry);
    }

    /// Counts what a batch of audit events says was redacted or refused.
    pub(crate) fn observe(&self, events: &[airlock_audit::event::Event]) {
        let Some(t) = self.telemetry() else { return };
        for event in events {
            match event {
                airlock_audit::event::Event::ModelRequest { redactions, .. } => {
                    for note in redactions {
                        t.redacted(&note.rule);
                    }
                }
                airlock_audit::event::Event::BlockedEgress { destination, reason, .. } => {
                    t.refused(crate::telemetry::refusal_reason(destination, reason));
                }
                _ => {}
            }
        }
    }

    /// Counts a refusal that is not on the audit log (a key missing or
    /// wrong, too many requests in flight).
    pub(crate) fn refused(&self, reason: &'static str) {
        if let Some(t) = self.telemetry() {
            t.refused(reason);
        }
    }
}

/// `/readyz`: 200 `ready` when the log can take appends and the gateway is
/// not draining, else 503 with the reason.
pub(crate) async fn readiness(ops: &Operations, audit: &AuditHandle) -> Response {
    let unready = |why: String| {
        (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain"), (header::RETRY_AFTER, "1")], why)
            .into_response()
    };
    if ops.draining() {
        return unready("draining: the gateway is shutting down\n".into());
    }
    let audit = audit.clone();
    let probe = tokio::task::spawn_blocking(move || audit.ready());
    // A writer stuck on its store is as unready as a failed one.
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(Ok(_))) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ready\n").into_response(),
        Ok(Ok(Err(e))) => unready(format!("the audit log cannot take appends: {e}\n")),
        Ok(Err(e)) => unready(format!("the readiness probe failed: {e}\n")),
        Err(_) => unready("the audit log did not answer within 5 s\n".into()),
    }
}

/// What a new configuration changes that only a restart applies, by the
/// name of its setting (the running value stays in force): where the
/// gateway listens, the audit store, the egress proxy, telemetry, the log
/// format.
pub fn needs_restart(old: &GatewayConfig, new: &GatewayConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.listen != new.listen {
        out.push("gateway.listen");
    }
    // Compared by their debug forms: the egress proxy's rules have no Eq.
    if format!("{:?}", old.egress) != format!("{:?}", new.egress) {
        out.push("egress");
    }
    if old.store_url != new.store_url {
        out.push("store.url");
    }
    if old.telemetry != new.telemetry {
        out.push("telemetry");
    }
    if old.log_format != new.log_format {
        out.push("gateway.log_format");
    }
    // The witnessing task is started once, with the witnesses it was given.
    let witnesses = |c: &GatewayConfig| -> Vec<(String, String, String)> {
        c.witnesses.iter().map(|w| (w.name.clone(), w.url.clone(), w.key.to_key_string())).collect()
    };
    if witnesses(old) != witnesses(new) {
        out.push("witness");
    }
    out
}

/// The gateway that serves new requests, replaced whole on reload.
pub struct LiveGateway {
    current: RwLock<(Arc<Gateway>, axum::Router)>,
}

impl LiveGateway {
    /// Serves `gw` until a reload.
    pub fn new(gw: Arc<Gateway>) -> Arc<LiveGateway> {
        let router = Arc::clone(&gw).router();
        Arc::new(LiveGateway { current: RwLock::new((gw, router)) })
    }

    /// The gateway new requests go to.
    pub fn current(&self) -> Arc<Gateway> {
        Arc::clone(&self.read().0)
    }

    /// The router new requests go through.
    pub(crate) fn router(&self) -> axum::Router {
        self.read().1.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Arc<Gateway>, axum::Router)> {
        match self.current.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Serves `config` from the next request on. Settings that need a
    /// restart are returned by name; the listener (and the egress proxy,
    /// the telemetry, the log format) keep running as they were started.
    pub fn reload(&self, mut config: GatewayConfig) -> Result<Vec<&'static str>, reqwest::Error> {
        let old = self.current();
        let restart = needs_restart(old.config(), &config);
        // The listener is bound already: the running address stays the one in force.
        config.listen = old.config().listen.clone();
        let new = old.reconfigured(config)?;
        let router = Arc::clone(&new).router();
        let mut current = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = (new, router);
        Ok(restart)
    }

    /// Starts draining: `/readyz` answers 503 from now on; requests are
    /// still served until the server is told to stop.
    pub fn drain(&self) {
        self.current().operations().draining.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_a_reload_cannot_apply_are_named() {
        let parse = |t: &str| GatewayConfig::parse(t, std::path::Path::new("g.toml"), &|_| None).unwrap();
        let base = "[[upstream]]\nname = \"u\"\napi = \"openai\"\nbase_url = \"http://a\"\nmodels = [\"m\"]\n";
        let old = parse(base);
        assert!(needs_restart(&old, &parse(&base.replace("http://a", "http://b"))).is_empty());
        let moved = parse(&format!("[gateway]\nlisten = \"127.0.0.1:9\"\n{base}"));
        assert_eq!(needs_restart(&old, &moved), ["gateway.listen"]);
        let traced = parse(&format!("{base}[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n"));
        assert_eq!(needs_restart(&old, &traced), ["telemetry"]);
        let vkey =
            airlock_audit::cosignature::CosignatureSigner::generate("w.test").unwrap().verifier().to_key_string();
        let witnessed =
            parse(&format!("{base}[[witness]]\nname = \"w\"\nurl = \"http://127.0.0.1:7380\"\nkey = \"{vkey}\"\n"));
        assert_eq!(needs_restart(&old, &witnessed), ["witness"]);
        assert!(needs_restart(&witnessed, &witnessed.clone()).is_empty());
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
