use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


    .header("Authorization", "Bearer SKa5d313dc4264a141c8d9e1dfda966896")

let client_secret = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let secret_key = format!("{}{}", "GcPQpPkhB7FF+ijbjta4wRI+QAhHP", suffix);
