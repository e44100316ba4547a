use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let content_hash = "041313a56dde608ff27d78fa3207ef96fee08975b902da3bdfc79add56732c06";

let asset = "/static/main.31a445ad4f68ce30.js.map";

    .header("Authorization", "Bearer glpat-dNoqs1dSUgM396AorqKR")

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}
