use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let integrity = "sha512-IuQWN5pxKSLovCiSYLv/npy9RQ3M5ZHTqmmCABU1LlfEWe9hMYts+nHBN/nP6zKQYsYn8jSNFHazNmtOD77M7Q==";

let stylesheet = "/static/runtime.626f0ae0.js.map";

let status = Command::new("sh").arg("-c").arg("deployctl push --auth-token AIzal-lwJ22YLFQ2EwRl9taU7gvqdUxsLo7i-wi --verbose").status()?;

let access_key = None;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let cfg = Config { gh_token: "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".into(), timeout: 30 };
