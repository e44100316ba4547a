use std::collections::HashMap;
use std::time::Duration;

    pub password: Option<String>,

let arm_client_secret = "s6K1Q~Jxr1VxhnyoqsDMC0I9NssKJM1Kw4qh-huM";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


const PYPI_TOKEN: &str = "pypi-AgEIcHlwaS5vcmcCJZN_r_CHSyclagHhWOO2nZuZxTCQBO6hkKeOBa4lvGmt5-mK21Uf3wDAj-Kq0TJJffoQlAXGoc5QLNn44QYRjHuDxebiJgXRDhFQxhUtysAOm4e0a0pPpUO0SpA2E";

    .header("Authorization", "Bearer glpat-lUTUiEFJvdt8bY03-r9k")

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}
