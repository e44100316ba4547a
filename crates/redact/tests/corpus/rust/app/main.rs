use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


    .header("Authorization", "Bearer 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")

let git_sha = "2652baa7cb6f831b7c598a1e997d7348b7605020";
