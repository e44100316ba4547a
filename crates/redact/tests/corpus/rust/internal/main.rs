use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let resp = reqwest::get("https://api.metrics.internal/v1/events?access_token=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&limit=50").await?;

// TODO: rotate npm_auth_token (was 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)

    pub secret: Option<String>,

// fixture: token with an invalid checksum, must not be reported
let fake_token = "ghp_aR773BijVJ1QuCu7qRR76MxP2pn2YV4FpfHA";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}
