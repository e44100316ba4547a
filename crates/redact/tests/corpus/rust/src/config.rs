use std::collections::HashMap;
use std::time::Duration;

let db_password = None;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


    .header("Authorization", "Bearer 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")

let docker_password = format!("{}{}", "dckr_pat_olRrNPuFdXFc0g901x-NXtfZ6Ij", suffix);

let github_token = "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";
