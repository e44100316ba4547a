//! OpenTelemetry export over OTLP/HTTP (protobuf): a span for every model
//! request and the gateway's metrics (requests, latency, tokens in and out,
//! redactions, refusals by reason), with attributes named after the GenAI
//! semantic conventions ([`attr`]).
//!
//! Off unless the configuration has a `[telemetry]` section: with none there
//! is no exporter, no thread and no connection.
//!
//! ```toml
//! [telemetry]
//! otlp_endpoint = "http://127.0.0.1:4318"   # /v1/traces and /v1/metrics are appended
//! service_name = "airlock-gateway"          # default
//! protocol = "http/protobuf"                # the only one (no gRPC)
//! export_interval_secs = 60                 # metrics; spans go in batches within seconds
//! ```
//!
//! What is exported is built only from [`ModelCall`], [`Ended`] and reason
//! words chosen here: model and upstream names, token counts, statuses,
//! durations, redaction rule ids. Never a prompt, an answer, a secret, a
//! key or a principal's name: nothing of a request's content has a way in.

use std::path::Path;
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde::Deserialize;

use crate::config::{ApiStyle, ConfigError};

/// Attribute and metric names used here, from the OpenTelemetry semantic
/// conventions (GenAI, server, error), and airlock's own under `airlock.`.
pub mod attr {
    /// `chat`, `embeddings`, `generate_content`, ... ([`super::operation`]).
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// The provider's wire API: `openai`, `anthropic`, `gcp.gemini`.
    pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// The older name of [`GEN_AI_PROVIDER_NAME`], still read by many backends.
    pub const GEN_AI_SYSTEM: &str = "gen_ai.system";
    /// The model the request asked for.
    pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
    /// The model the answer names.
    pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// Tokens of the prompt, as the upstream counted them.
    pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// Tokens generated, as the upstream counted them.
    pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// `input` or `output`, on the token usage histogram.
    pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
    /// The upstream's host.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// The upstream's port.
    pub const SERVER_PORT: &str = "server.port";
    /// Why a request failed: an HTTP status or a word ([`super::error_type`]).
    pub const ERROR_TYPE: &str = "error.type";
    /// The upstream's HTTP status (0: none answered).
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// The upstream's name in gateway.toml.
    pub const AIRLOCK_UPSTREAM: &str = "airlock.upstream";
    /// The gateway route (`openai.chat`, `anthropic.messages`, ...).
    pub const AIRLOCK_ROUTE: &str = "airlock.route";
    /// Secrets and fields the gateway replaced or removed in the request.
    pub const AIRLOCK_REDACTIONS: &str = "airlock.redactions";
    /// The id of the rule that redacted (a rule's name, never what it found).
    pub const AIRLOCK_REDACTION_RULE: &str = "airlock.redaction.rule";
    /// Why the gateway refused ([`super::refusal_reason`]).
    pub const AIRLOCK_REFUSAL_REASON: &str = "airlock.refusal.reason";

    /// Histogram of model request durations, seconds (GenAI conventions).
    pub const METRIC_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
    /// Histogram of tokens per request, by [`GEN_AI_TOKEN_TYPE`] (GenAI conventions).
    pub const METRIC_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
    /// Counter of model requests forwarded.
    pub const METRIC_REQUESTS: &str = "airlock.gateway.requests";
    /// Counter of redactions, by rule.
    pub const METRIC_REDACTIONS: &str = "airlock.gateway.redactions";
    /// Counter of refusals, by reason.
    pub const METRIC_REFUSALS: &str = "airlock.gateway.refusals";
}

/// Where telemetry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The collector's base URL (`/v1/traces`, `/v1/metrics` are appended).
    pub otlp_endpoint: String,
    /// `service.name` of everything exported.
    pub service_name: String,
    /// How often metrics are exported (and once more at shutdown).
    pub export_interval: Duration,
}

/// `[telemetry]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TelemetrySection {
    otlp_endpoint: String,
    service_name: Option<String>,
    protocol: Option<String>,
    export_interval_secs: Option<u64>,
}

impl TelemetrySection {
    /// Checks it: an http(s) endpoint without credentials or query, the one protocol supported.
    pub(crate) fn check(self, origin: &Path) -> Result<TelemetryConfig, ConfigError> {
        let bad = |what: String| ConfigError::Invalid(format!("{}: telemetry.{what}", origin.display()));
        match self.protocol.as_deref() {
            None | Some("http/protobuf") => {}
            Some(other) => {
                return Err(bad(format!(
                    "protocol: {other:?} is not supported\nhint: protocol = \"http/protobuf\" (OTLP over HTTP, port 4318 by default)"
                )));
            }
        }
        let url = reqwest::Url::parse(&self.otlp_endpoint)
            .map_err(|e| bad(format!("otlp_endpoint: {:?}: {e}", self.otlp_endpoint)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("otlp_endpoint must be an http:// or https:// URL with a host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(bad("otlp_endpoint must not carry credentials or a query".into()));
        }
        let service_name = self.service_name.unwrap_or_else(|| "airlock-gateway".into());
        if service_name.is_empty() || service_name.chars().any(char::is_control) {
            return Err(bad("service_name must be non-empty, without control characters".into()));
        }
        if self.export_interval_secs == Some(0) {
            return Err(bad("export_interval_secs must be at least 1".into()));
        }
        Ok(TelemetryConfig {
            otlp_endpoint: self.otlp_endpoint.trim_end_matches('/').to_string(),
            service_name,
            export_interval: Duration::from_secs(self.export_interval_secs.unwrap_or(60)),
        })
    }
}

/// What telemetry could not do.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An exporter could not be built.
    #[error("telemetry: cannot export to {endpoint}: {message}")]
    Exporter {
        /// The collector.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// Flushing at shutdown failed (what was not sent is lost).
    #[error("telemetry: the last export failed: {0}")]
    Shutdown(String),
}

/// A model request as forwarded: names and counts, nothing of its content.
#[derive(Debug, Clone)]
pub struct ModelCall {
    /// The gateway route (`openai.chat`, ...).
    pub route: &'static str,
    /// The GenAI operation ([`operation`]).
    pub operation: &'static str,
    /// The upstream's wire API.
    pub api: ApiStyle,
    /// The model asked for.
    pub request_model: String,
    /// The upstream's name.
    pub upstream: String,
    /// The upstream's base URL (its host and port are exported, never a path).
    pub base_url: String,
    /// Changes made to what left (redactions, headers held back, tools removed).
    pub redactions: u64,
    /// When the request arrived.
    pub started: SystemTime,
}

/// How a model request ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    /// The upstream's status (0: none answered).
    pub status: u16,
    /// Prompt tokens, as the upstream counted them.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// The model the answer names, if it named one.
    pub response_model: Option<&'a str>,
    /// From arrival to the answer's end.
    pub duration: Duration,
    /// `complete`, or what went wrong (read only to choose an [`error_type`]).
    pub outcome: &'a str,
}

/// The GenAI operation of a gateway route.
pub fn operation(route: &str) -> &'static str {
    match route {
        "openai.chat" | "openai.responses" | "anthropic.messages" => "chat",
        "openai.embeddings" => "embeddings",
        "gemini.generate_content" | "gemini.stream_generate_content" => "generate_content",
        "anthropic.count_tokens" | "gemini.count_tokens" => "count_tokens",
        _ => "other",
    }
}

/// The GenAI provider name of a wire API.
pub fn provider(api: ApiStyle) -> &'static str {
    match api {
        ApiStyle::OpenAi => "openai",
        ApiStyle::Anthropic => "anthropic",
        ApiStyle::Gemini => "gcp.gemini",
    }
}

/// `error.type` of a request's end: `None` when it succeeded, the status
/// when the upstream refused, else a word for what broke.
pub fn error_type(status: u16, outcome: &str) -> Option<String> {
    if status == 0 {
        return Some(if outcome.contains("in time") { "timeout" } else { "upstream_unavailable" }.into());
    }
    if status >= 400 {
        return Some(status.to_string());
    }
    if outcome == "complete" {
        return None;
    }
    Some(
        if outcome.starts_with("the client disconnected") {
            "client_disconnected"
        } else if outcome.contains("in time") {
            "timeout"
        } else if outcome.contains("not JSON") {
            "invalid_response"
        } else {
            "upstream_broke_off"
        }
        .into(),
    )
}

/// The reason word of a refusal the audit log records (`destination` and
/// `reason` of its `blocked_egress` event): a fixed vocabulary, so that no
/// text from a request can reach an exported attribute.
pub fn refusal_reason(destination: &str, reason: &str) -> &'static str {
    if destination.starts_with("tool:") {
        "server_tool"
    } else if destination.starts_with("model:") {
        if reason.contains("may not use") { "model_not_allowed" } else { "no_upstream" }
    } else if destination.starts_with("broker:") {
        if reason.contains("not a model API route") {
            "not_a_model_route"
        } else if reason.contains("query") {
            "query"
        } else if reason.contains("key") || reason.contains("broker serves only") {
            "unauthenticated"
        } else {
            "invalid_request"
        }
    } else if reason.contains("budget") {
        "budget"
    } else {
        "policy"
    }
}

/// A redaction rule id as exported: rule ids are names from the rule set,
/// but a custom rule's id is bounded and cleaned all the same.
fn rule_name(rule: &str) -> String {
    rule.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || "-_.:".contains(c) { c } else { '_' }).collect()
}

/// A model name as exported: bounded, printable.
fn model_name(model: &str) -> String {
    model.chars().take(128).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The exporters, and the instruments the gateway records with.
pub struct Telemetry {
    traces: SdkTracerProvider,
    metrics: SdkMeterProvider,
    tracer: SdkTracer,
    requests: Counter<u64>,
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
    redactions: Counter<u64>,
    refusals: Counter<u64>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts the exporters (a batch thread for spans, a periodic one for
    /// metrics). Call outside an async context: the HTTP client blocks.
    pub fn start(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let failed = |e: &dyn std::fmt::Display| TelemetryError::Exporter {
            endpoint: config.otlp_endpoint.clone(),
            message: e.to_string(),
        };
        // Its own client: no proxy from the environment, bounded time.
        let client = || {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| failed(&e))
        };
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client()?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", config.otlp_endpoint))
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| failed(&e))?;
        let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(client()?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/metrics", config.otlp_endpoint))
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| failed(&e))?;
        // Only what is set here: nothing read from the host or the environment.
        let resource = Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let traces = SdkTracerProvider::builder().with_batch_exporter(spans).with_resource(resource.clone()).build();
        let reader = PeriodicReader::builder(metric_exporter).with_interval(config.export_interval).build();
        let metrics = SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build();
        let tracer = traces.tracer("airlock-gateway");
        let meter = metrics.meter("airlock-gateway");
        Ok(Telemetry {
            requests: meter
                .u64_counter(attr::METRIC_REQUESTS)
                .with_description("Model requests forwarded")
                .with_unit("{request}")
                .build(),
            duration: meter
                .f64_histogram(attr::METRIC_OPERATION_DURATION)
                .with_description("Model request duration, to the answer's end")
                .with_unit("s")
                .with_boundaries(vec![
                    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
                ])
                .build(),
            tokens: meter
                .u64_histogram(attr::METRIC_TOKEN_USAGE)
                .with_description("Tokens per model request, input and output")
                .with_unit("{token}")
                .with_boundaries(vec![
                    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
                ])
                .build(),
            redactions: meter
                .u64_counter(attr::METRIC_REDACTIONS)
                .with_description("Secrets and fields replaced or removed in requests, by rule")
                .build(),
            refusals: meter
                .u64_counter(attr::METRIC_REFUSALS)
                .with_description("Requests or parts of requests refused, by reason")
                .build(),
            traces,
            metrics,
            tracer,
        })
    }

    /// Records a model request that ended: its span and its metrics.
    pub fn model_call(&self, call: &ModelCall, ended: &Ended<'_>) {
        let common = [
            KeyValue::new(attr::GEN_AI_OPERATION_NAME, call.operation),
            KeyValue::new(attr::GEN_AI_PROVIDER_NAME, provider(call.api)),
            KeyValue::new(attr::GEN_AI_REQUEST_MODEL, model_name(&call.request_model)),
            KeyValue::new(attr::AIRLOCK_UPSTREAM, call.upstream.clone()),
        ];
        let error = error_type(ended.status, ended.outcome);
        let url = reqwest::Url::parse(&call.base_url).ok();
        let mut attributes: Vec<KeyValue> = common.to_vec();
        attributes.extend([
            KeyValue::new(attr::GEN_AI_SYSTEM, provider(call.api)),
            KeyValue::new(attr::AIRLOCK_ROUTE, call.route),
            KeyValue::new(attr::GEN_AI_USAGE_INPUT_TOKENS, ended.input_tokens as i64),
            KeyValue::new(attr::GEN_AI_USAGE_OUTPUT_TOKENS, ended.output_tokens as i64),
            KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(ended.status)),
            KeyValue::new(attr::AIRLOCK_REDACTIONS, call.redactions as i64),
        ]);
        if let Some(model) = ended.response_model {
            attributes.push(KeyValue::new(attr::GEN_AI_RESPONSE_MODEL, model_name(model)));
        }
        if let Some(url) = &url {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new(attr::SERVER_ADDRESS, host.to_string()));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new(attr::SERVER_PORT, i64::from(port)));
            }
        }
        if let Some(e) = &error {
            attributes.push(KeyValue::new(attr::ERROR_TYPE, e.clone()));
        }
        let mut span = self
            .tracer
            .span_builder(format!("{} {}", call.operation, model_name(&call.request_model)))
            .with_kind(SpanKind::Client)
            .with_start_time(call.started)
            .with_attributes(attributes)
            .start(&self.tracer);
        if let Some(e) = &error {
            span.set_status(Status::error(e.clone()));
        }
        span.end_with_timestamp(call.started + ended.duration);

        let mut metric = common.to_vec();
        if let Some(e) = error {
            metric.push(KeyValue::new(attr::ERROR_TYPE, e));
        }
        self.requests.add(1, &metric);
        self.duration.record(ended.duration.as_secs_f64(), &metric);
        for (kind, n) in [("input", ended.input_tokens), ("output", ended.output_tokens)] {
            let mut a = common.to_vec();
            a.push(KeyValue::new(attr::GEN_AI_TOKEN_TYPE, kind));
            self.tokens.record(n, &a);
        }
    }

    /// Counts a redaction by its rule id.
    pub fn redacted(&self, rule: &str) {
        self.redactions.add(1, &[KeyValue::new(attr::AIRLOCK_REDACTION_RULE, rule_name(rule))]);
    }

    /// Counts a refusal.
    pub fn refused(&self, reason: &'static str) {
        self.refusals.add(1, &[KeyValue::new(attr::AIRLOCK_REFUSAL_REASON, reason)]);
    }

    /// Sends what is pending and stops the exporters' threads. Call outside
    /// an async context.
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        let traces = self.traces.shutdown();
        let metrics = self.metrics.shutdown();
        traces.map_err(|e| TelemetryError::Shutdown(e.to_string()))?;
        metrics.map_err(|e| TelemetryError::Shutdown(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> Result<TelemetryConfig, ConfigError> {
        let s: TelemetrySection = toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        s.check(Path::new("gateway.toml"))
    }

    #[test]
    fn the_telemetry_section_is_checked() {
        let c = section("otlp_endpoint = \"http://127.0.0.1:4318/\"").unwrap();
        assert_eq!(c.otlp_endpoint, "http://127.0.0.1:4318");
        assert_eq!(c.service_name, "airlock-gateway");
        assert_eq!(c.export_interval, Duration::from_secs(60));
        let err = |t: &str| section(t).unwrap_err().to_string();
        assert!(err("otlp_endpoint = \"http://h:4317\"\nprotocol = \"grpc\"").contains("http/protobuf"));
        assert!(err("otlp_endpoint = \"ftp://h\"").contains("http:// or https://"));
        assert!(err("otlp_endpoint = \"http://user:pw@h\"").contains("credentials"));
        assert!(err("otlp_endpoint = \"http://h\"\nexport_interval_secs = 0").contains("at least 1"));
        assert!(err("otlp_endpoint = \"http://h\"\ncolour = 1").contains("unknown field"));
    }

    #[test]
    fn refusals_and_errors_are_words_from_a_fixed_vocabulary() {
        assert_eq!(refusal_reason("tool:web_search", "server-side tool web_search removed"), "server_tool");
        assert_eq!(refusal_reason("model:gpt-9", "the key of alice may not use model \"gpt-9\""), "model_not_allowed");
        assert_eq!(refusal_reason("model:x", "no upstream serves model \"x\""), "no_upstream");
        assert_eq!(
            refusal_reason("broker:GET /v1/x", "not a model API route: nothing was forwarded"),
            "not_a_model_route"
        );
        // Whatever the reason says, only the word leaves.
        let secret = "AKIAIOSFODNN7EXAMPLE";
        assert!(!refusal_reason(secret, secret).contains(secret));
        assert_eq!(error_type(200, "complete"), None);
        assert_eq!(error_type(429, "complete").as_deref(), Some("429"));
        assert_eq!(error_type(0, "upstream u did not answer in time").as_deref(), Some("timeout"));
        assert_eq!(error_type(0, "upstream u failed: refused").as_deref(), Some("upstream_unavailable"));
        assert_eq!(error_type(200, "the client disconnected after 9 bytes").as_deref(), Some("client_disconnected"));
        assert_eq!(operation("anthropic.messages"), "chat");
        assert_eq!(operation("gemini.stream_generate_content"), "generate_content");
        assert_eq!(rule_name("aws key\n"), "aws_key_");
    }
}
