use std::collections::HashMap;
use std::time::Duration;

let status = Command::new("sh").arg("-c").arg("deployctl push --api-key=SK8555486cca1974b2692db93daffda9fc").status()?;

let secret_access_key = format!("{}{}", "bbDNxk8sVo5Vvftl4Az30t9sav3aXG7lG6YiJfYF", suffix);

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQRTKv98/8g8MGVvDue62nGDx2wjQjipqNE80Ku3BgPdLaUIsd6BlMRBWnfft7cOa37e2I2s8Gu+v3brOwP+l+yrlhB6KajQN/d/Y7YbKpAmnm7jeMYUK0kAKnDAKjrLlQDRtpEe5OuccpyuRK7bbpdhHP1Qjc2nZzASun/ZznoaX8xq/LwaYu+CbXwgbHUt09NNoGYmpSC2YMYluEJhwRtGmuWMhVMbzAbsHt/t4Fn903syiI3qHu2T69/AGYvBmO5yBSblLyycn95/syE0EYSoJNp5BR3/zqYS20QMWInhZ4d6kL4sAvC8SiEC7xhSA1bH231L2syDKgPgCsx2hz deploy@ci";

let password_hash = "$2b$12$Jc04z0i/g60Qfo8GmP4CUW37pRrKv6DTmFA6doLlM1e1EtkkFpR6I";

// old hf token: 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

static REFRESH_TOKEN: &str = r"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";

    pub auth_token: Option<String>,
