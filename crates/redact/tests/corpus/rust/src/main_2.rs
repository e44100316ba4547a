use std::collections::HashMap;
use std::time::Duration;

    .header("Authorization", "Bearer sk-ant-api03-KrPUeyIqYleHmdgm3ylk07hlJxLkhMDBksvRQMpyp-awdj9FpvZRpp4ujXY3FlzELv7HJXX_KKdqlhM15RmXW1xVizuEZAA")

let cfg = Config { access_key_id: "AKIAE2356OLY6333WZQG".into(), timeout: 30 };

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let token = "npm_000000000000000000000000000000000000";

let client_secret = None;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


static CLIENT_SECRET: &str = r"xr09Q~u29ZxqNOIimthZM-8bvG19ZplYg4Xrm";
