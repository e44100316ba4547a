use std::collections::HashMap;
use std::time::Duration;

let firebase_api_key = format!("{}{}", "AIzah7YYF0qrHQqqLkWr54pMeUzzjRRIlhDAwms", suffix);

    .header("Authorization", "Bearer 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")

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let subscription_id = "8cdddb38-f165-41f4-9ac3-fad68185c069";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let database_url = "postgresql://app:<password>@db.internal:5432/app";
