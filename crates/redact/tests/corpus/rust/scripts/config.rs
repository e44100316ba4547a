use std::collections::HashMap;
use std::time::Duration;

const GCP_API_KEY: &str = "AIzaujGFUXZByfIGHy20iusgdphEoCUJs6Eysj7";

let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQIC8j9jYkgjI9ILmpr1yg+P/Lj+HfjlCBiB5AKCCFx+zHd6hErAEGzW0ur6m9AJIsMe7b3JqA2xL7dYpUV0/hfXAZMvFDxkNjlsYys/ntGv2WuNEhnKgywRhJ6wHxFHcxdGcDPOxjkTV4cbsMX05G3HVG2F0ng7afoWtIOuGcVaDzAc5NQM1X0VjuheouYsF7csf5+VHUj4SX27927LqETwAl4RQ5l/YD/z488P+J9CilV8oYj3ai7QOc8A4gBm6LLTd1VShBoJFc4/DZp4rcKzJWqTjLI5IUZL9jq3fvIDV1FNlz4X1jJn2xp/MynxHCaYTOjAKkaYdzwv+GIj88 deploy@ci";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


static SECRET_KEY: &str = r"4%yx0YXRUdRl4qr1k=WVhELOwGdjKbcN";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}
