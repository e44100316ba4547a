//! One writer for many callers. Appends from any thread are queued to the
//! thread that owns the log, which commits everything waiting in one
//! transaction (group commit: one fsync acknowledges many appends), and signs
//! a quiet log's tail on a timer so no entry waits longer than the interval
//! for a checkpoint.
//!
//! A record that nothing waits on (the answer to a request that has already
//! been answered) can be appended deferred: it is committed with the next
//! append someone waits on, in arrival order, or on its own after
//! [`DEFER`], so that its fsync does not hold up the next request's.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::event::Event;
use crate::log::{AuditError, AuditLog};
use crate::store::Store;

/// Most appends one transaction gathers.
const MAX_GROUP: usize = 4096;

/// Longest a deferred append waits for another commit to carry it before it
/// is committed on its own.
pub const DEFER: Duration = Duration::from_millis(20);

enum Request {
    Append { session: String, events: Vec<Event>, deferred: bool, reply: SyncSender<Result<u64, AuditError>> },
    Checkpoint { reply: SyncSender<Result<String, AuditError>> },
    Ready { reply: SyncSender<Result<u64, AuditError>> },
}

/// How long after a failed group commit the writer reports itself not
/// ready ([`AuditHandle::ready`]); then it says ready again, so that the next
/// append can find out whether the store recovered.
const NOT_READY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// The thread that owns the log. Dropping it (or [`AuditWriter::close`])
/// signs the unsigned tail and stops the thread once every handle is gone.
pub struct AuditWriter<S: Store + Send + 'static> {
    handle: AuditHandle,
    thread: Option<JoinHandle<Result<AuditLog<S>, AuditError>>>,
}

/// A cheap, cloneable way to append from any thread.
#[derive(Clone)]
pub struct AuditHandle {
    tx: Sender<Request>,
}

impl<S: Store + Send + 'static> AuditWriter<S> {
    /// Moves `log` onto its own thread.
    pub fn spawn(log: AuditLog<S>) -> Result<AuditWriter<S>, AuditError> {
        AuditWriter::spawn_deferring(log, DEFER)
    }

    /// Moves `log` onto its own thread, where a deferred append waits at
    /// most `defer` for company.
    pub fn spawn_deferring(log: AuditLog<S>, defer: Duration) -> Result<AuditWriter<S>, AuditError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("airlock-audit".into())
            .spawn(move || serve(log, rx, defer))
            .map_err(|e| AuditError::Writer(format!("cannot start the writer thread: {e}")))?;
        Ok(AuditWriter { handle: AuditHandle { tx }, thread: Some(thread) })
    }

    /// A handle for appending.
    pub fn handle(&self) -> AuditHandle {
        self.handle.clone()
    }

    /// Waits for every handle to be dropped and the queue to drain, signs the
    /// tail, and gives the log back.
    pub fn close(mut self) -> Result<AuditLog<S>, AuditError> {
        // The writer's own sender goes; the thread stops when the callers' do.
        self.handle = AuditHandle::detached();
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| AuditError::Writer("the writer thread panicked".into()))?,
            None => Err(AuditError::Writer("the writer was already closed".into())),
        }
    }
}

impl<S: Store + Send + 'static> Drop for AuditWriter<S> {
    fn drop(&mut self) {
        // The writer's own sender goes; the thread stops when the callers' do.
        self.handle = AuditHandle::detached();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl AuditHandle {
    /// A handle to no writer: every call fails.
    fn detached() -> AuditHandle {
        let (tx, _) = mpsc::channel();
        AuditHandle { tx }
    }

    /// Appends `events` under `session`; returns once they are committed
    /// (fsynced, unless the store batches). On error nothing was recorded and
    /// the actions must not happen.
    pub fn append(&self, session: &str, events: Vec<Event>) -> Result<u64, AuditError> {
        self.send_append(session, events, false)
    }

    /// Appends `events` under `session` without holding up anyone else's
    /// append: the writer keeps them until the next append that is waited
    /// on (one transaction, one fsync, for both) or for at most [`DEFER`].
    /// Returns once they are committed, like [`AuditHandle::append`]. For a
    /// record whose action has already happened, such as the answer to a
    /// request already answered.
    pub fn append_deferred(&self, session: &str, events: Vec<Event>) -> Result<u64, AuditError> {
        self.send_append(session, events, true)
    }

    fn send_append(&self, session: &str, events: Vec<Event>, deferred: bool) -> Result<u64, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Request::Append { session: session.to_string(), events, deferred, reply })
            .map_err(|_| AuditError::Writer("the audit writer has stopped".into()))?;
        answer.recv().map_err(|_| AuditError::Writer("the audit writer stopped before answering".into()))?
    }

    /// Signs a checkpoint now; returns the note.
    pub fn checkpoint(&self) -> Result<String, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Request::Checkpoint { reply })
            .map_err(|_| AuditError::Writer("the audit writer has stopped".into()))?;
        answer.recv().map_err(|_| AuditError::Writer("the audit writer stopped before answering".into()))?
    }

    /// Whether the log can take appends now: the writer thread answers after
    /// a cheap read of its store (its size, returned), and refuses while its
    /// last group commit failed less than 10 s ago. For readiness probes.
    pub fn ready(&self) -> Result<u64, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Request::Ready { reply })
            .map_err(|_| AuditError::Writer("the audit writer has stopped".into()))?;
        answer.recv().map_err(|_| AuditError::Writer("the audit writer stopped before answering".into()))?
    }
}

fn serve<S: Store>(mut log: AuditLog<S>, rx: Receiver<Request>, defer: Duration) -> Result<AuditLog<S>, AuditError> {
    let interval = log.schedule().interval.max(Duration::from_millis(1));
    let mut failed_at: Option<Instant> = None;
    // Deferred appends not yet committed, in arrival order, and when the first came.
    let mut deferred: Vec<Pending> = Vec::new();
    let mut deferred_since = Instant::now();
    loop {
        // The timers run only while something waits: entries to be signed,
        // or deferred appends to be committed. A quiet log (an idle session)
        // wakes nobody.
        let mut wait = (log.unsigned() > 0).then_some(interval);
        if !deferred.is_empty() {
            let left = defer.saturating_sub(deferred_since.elapsed());
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        let waited = match wait {
            Some(timeout) => rx.recv_timeout(timeout),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let first = match waited {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                if !deferred.is_empty() && deferred_since.elapsed() >= defer {
                    commit(&mut log, std::mem::take(&mut deferred), &mut failed_at);
                }
                // A failed timed checkpoint is retried on the next tick; the
                // entries are already durable.
                let _ = log.checkpoint_if_due();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut queue = vec![first];
        while queue.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => queue.push(r),
                Err(_) => break,
            }
        }
        // Everything deferred goes first, so the log keeps arrival order.
        let already_deferred = !deferred.is_empty();
        let mut group = std::mem::take(&mut deferred);
        let mut waited_on = false;
        for request in queue {
            match request {
                Request::Append { session, events, deferred, reply } => {
                    waited_on |= !deferred;
                    group.push((session, events, reply));
                }
                Request::Checkpoint { reply } => {
                    commit(&mut log, std::mem::take(&mut group), &mut failed_at);
                    let _ = reply.send(log.checkpoint());
                }
                Request::Ready { reply } => {
                    commit(&mut log, std::mem::take(&mut group), &mut failed_at);
                    let answer = match failed_at.filter(|t| t.elapsed() < NOT_READY_AFTER_FAILURE) {
                        Some(t) => Err(AuditError::Writer(format!(
                            "the last append failed {:.1}s ago",
                            t.elapsed().as_secs_f64()
                        ))),
                        None => log.store().size().map_err(AuditError::from),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
        if waited_on || group.len() >= MAX_GROUP {
            commit(&mut log, group, &mut failed_at);
        } else if !group.is_empty() {
            // Only deferred appends came: they wait for company, or for `defer`.
            if !already_deferred {
                deferred_since = Instant::now();
            }
            deferred = group;
        }
    }
    commit(&mut log, deferred, &mut failed_at);
    if log.unsigned() > 0 {
        log.checkpoint()?;
    }
    Ok(log)
}

type Pending = (String, Vec<Event>, SyncSender<Result<u64, AuditError>>);

/// Commits a group in one transaction and answers each caller; a failure's time goes in `failed_at`.
fn commit<S: Store>(log: &mut AuditLog<S>, group: Vec<Pending>, failed_at: &mut Option<Instant>) {
    if group.is_empty() {
        return;
    }
    let refs: Vec<(&str, &[Event])> = group.iter().map(|(s, e, _)| (s.as_str(), e.as_slice())).collect();
    match log.append_many(&refs) {
        Ok(firsts) => {
            *failed_at = None;
            for ((_, _, reply), first) in group.iter().zip(firsts) {
                let _ = reply.send(Ok(first));
            }
        }
        Err(e) => {
            *failed_at = Some(Instant::now());
            let message = e.to_string();
            for (_, _, reply) in &group {
                let _ = reply.send(Err(AuditError::Writer(format!("the group commit failed: {message}"))));
            }
        }
    }
}
