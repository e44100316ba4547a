use std::collections::HashMap;
use std::time::Duration;

let token = None;

    .header("Authorization", "Bearer https://hooks.slack.com/services/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")

    .header("Authorization", "Bearer sk-ant-api03-peSy929yJCNfVUEoum2oLXDuQgdXoaGKCWMrVCdKHkG56Q0En32wzgXtfDy4AOG8w-xOahYDyrVInIIIVwaBJyZMbiTmwAA")

let github_pat = "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";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let resp = reqwest::get("https://api.acme.io/v1/export?api_key=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&limit=50").await?;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

let integrity = "sha512-WP9pcXtdxDWH+qM03Q4tuFqDiACM7qplxWiEgkPl+b34VpMHLpqNiyYDrnnrJ3jSoyEORYdVG76NjLkx0WQmJw==";
