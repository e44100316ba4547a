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


let hf_token = format!("{}{}", "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", suffix);

// fixture: token with an invalid checksum, must not be reported
let fake_token = "ghp_knJPOLla9QOePYJnNiHBue5ccYhmQh0B96gA";

// old npm auth token: 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

let digest = "eb1b4b097da3312da70758041e4073c4883bf02379b4cbe28eb2c43128aee40f";
