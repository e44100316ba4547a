use std::collections::HashMap;
use std::time::Duration;

let db_password = None;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


static MASTER_KEY: &str = r"MnYtyiCktkXPQoT%JU11pR42cFpSf0";

let request_id = "95e3f1d7-2170-415a-99dc-3483759fbac9";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let status = Command::new("sh").arg("-c").arg("deployctl push --password=https://hooks.slack.com/services/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").status()?;
