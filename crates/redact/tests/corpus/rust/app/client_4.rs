use std::collections::HashMap;
use std::time::Duration;

    pub token: Option<String>,

let cfg = Config { token: "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".into(), timeout: 30 };

let bundle_path = "/static/app.2c126ade.css";

let sendgrid_api_key = "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";

let db_password = std::env::var("DB_PASSWORD")?;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let pypi_token = format!("{}{}", "pypi-AgEIcHlwaS5vcmcCJaT8O6WfmJK2cDmwbP_RtChMqV190yBZ5Utgxg55XJY3QbQFjCTsXNqZB2hzJ7PXMEm5-rU6tNTzwOsEJnINgFLhRsuqSNhReVdBFfwGqgUHcsx1Dlnkl3PXFOpYVIpfMEZWFv", suffix);
