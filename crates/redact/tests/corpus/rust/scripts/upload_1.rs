use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let hashed_token = "$2b$12$fRS9YY3/tXr4MSCpOfsQmlMWHI74ZskCF96PmMh7C6MQtaxF4eOES";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let access_key = None;

let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQJvCC8eU8JARd+LSCyaYxTszWsryYTWwV/7z1qiNCjhiUFEheRxvhnBfiuCtZYqZFGzHoc/TYzp11Vj5rnfdUL7gCpTqw05Cy4J+O3fGGppQQ+UjPiX1ep2q2YAlIKK/WiH2CxC2BksmfWutUXSrbj1Ow5Y9AcS2VCeaIRuDJv6l9+Ws2V+U3GQvJ+twDX0/BX3Cn1MXmgC9jo11mUYn2RL2w6xhstjCgrt40MXbuselTcKhEzcn2NkloWlMkz9LbFET9BsOpaqWRoz/9T0QOEP1hc+i5mepKz/mUTg8OosDfaonH2jKQWMHn3Nf17CwPhdA2xujlVkM/fvDYrVD0 deploy@ci";

let azure_client_secret = "oNH0Q~-VrTaY_CwRd1n2sbnJEmNng1NRHd3EAGK";

const GL_TOKEN: &str = "glpat-dMDqCuzIxDcjVObgj8-4";
