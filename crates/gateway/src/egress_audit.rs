//! The egress proxy's records, kept in the audit log: each connection before
//! it is made (so a connection that cannot be recorded is not made), each
//! refusal, and each close with the bytes that went each way.

use airlock_audit::event::Event;
use airlock_audit::writer::AuditHandle;

use crate::egress::{EgressEvent, EgressRecorder};

/// Records egress events under one audit session.
pub struct AuditRecorder {
    audit: AuditHandle,
    session: String,
}

impl AuditRecorder {
    /// Records to `audit` under `session`.
    pub fn new(audit: AuditHandle, session: impl Into<String>) -> AuditRecorder {
        AuditRecorder { audit, session: session.into() }
    }
}

/// The audit event for an egress event.
pub fn event(e: &EgressEvent) -> Event {
    match e {
        EgressEvent::Allowed { client, method, host, port, addr } => Event::EgressOpen {
            client: client.clone(),
            method: method.clone(),
            host: host.clone(),
            port: u64::from(*port),
            addr: addr.to_string(),
        },
        EgressEvent::Denied { client, target, reason } => Event::BlockedEgress {
            destination: target.clone(),
            reason: format!("{reason} (client {client})"),
            bytes: 0,
        },
        EgressEvent::Closed { client, host, port, bytes_up, bytes_down, millis } => Event::EgressClose {
            client: client.clone(),
            host: host.clone(),
            port: u64::from(*port),
            bytes_up: *bytes_up,
            bytes_down: *bytes_down,
            duration_ms: *millis,
        },
    }
}

impl EgressRecorder for AuditRecorder {
    fn record(&self, e: &EgressEvent) -> Result<(), String> {
        self.audit.append(&self.session, vec![event(e)]).map(|_| ()).map_err(|err| err.to_string())
    }
}
