use std::collections::HashMap;
use std::time::Duration;

    .header("Authorization", "Bearer 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")

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


const SMTP_PASSWORD: &str = "BfnFicmDsDYN=3pmxeCP4uO";

let access_key = "";

    .header("Authorization", "Bearer SKb08bd924add22dafdb372238c81493f5")

    .header("Authorization", "Bearer AIzatYhKngKZgyUFmlSLA5iI3B7jhc3uHEKyizP")
