use std::collections::HashMap;
use std::time::Duration;

    pub access_key: Option<String>,

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let access_key = "xoxb-your-bot-token-here";

let resp = reqwest::get("https://api.partner.example.net/v1/search?access_token=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&limit=50").await?;

static LLM_API_KEY: &str = r"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";
