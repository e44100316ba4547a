use std::collections::HashMap;
use std::time::Duration;

let trace_id = "f0747635-5c5e-4f12-8b74-570c1252d3d8";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


const AWS_SECRET_ACCESS_KEY: &str = "B/8A8rhxRmtr4R7PP2pXPnZvq6zdsIK/rPYS7EMl";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let secret = "L6W07Iqfsqmr+Ua^38emF%XBqD.lnux";

static INSTALLATION_TOKEN: &str = r"ghu_yGfc0UG0UV7rt2oN8qOdUxn4cKGF922FJU7v";

let status = Command::new("sh").arg("-c").arg("node scripts/release.js --auth-token=sk_test_PlFYet921FUA8wjuCTXVnxuCymP3Cjp4761vt0j83enKY3uVieFFWnMwM9zKj18BwyRDeIiY8z5a521VFYSYbTP4cAzON3lC6Hp").status()?;

    pub token: Option<String>,
