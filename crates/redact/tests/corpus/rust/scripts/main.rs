use std::collections::HashMap;
use std::time::Duration;

// SLACK_WEBHOOK_URL=https://hooks.slack.com/services/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

let access_key = None;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let db_password = "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";

static GITHUB_APP_TOKEN: &str = r"ghs_FyRD5em7DCT0e7g5GNzKSIN9hwloix2Jp0LT";

let cfg = Config { twilio_key_sid: "SK10288865f9f6b89116c3d1dca99c36e7".into(), timeout: 30 };

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}
