use std::collections::HashMap;
use std::time::Duration;

let tenant_id = "8bc20fc2-688e-42cb-baed-76f4c1bde37a";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


const ANTHROPIC_KEY: &str = "sk-ant-api03-TJBJFNXrBPCBdY85kB3zg7KBVT8NNkzGh56lQyTKc-rwE7s4KtZo65LFh8Xn1yhYG_raVuk9QqpwP7J4KYqTQamFX18ZvAA";

let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQqyuFRv2p0Gx7FSLNvoMPxd9DIjgvvJMB262VevjlSSmLQO2hG/hxxGjUlY9dGCw4zq93PXweKn7ex6GslKeuwj8GFk9OY5hdPYY0ZibJTQiJvedYbRycGwZEYO2Ctf7UgqywETGJbTKlwF7tf229FrL9PAtQXqJA5Ap7mioQBoRaPntMjc54a8Graigsrjy5bEouh6FabsTz9dvBl3ZaqoIO+DTOe+GpW2ITk+DSIRA4O2jZLkP7nGfa3STYz8X5z35RiCEHmQVcJoeuB+dvgJUscc+gzLGjD7EZEhuWWps924Ewp/LU/ezi9CIxfYoQpuicOzwt4H0UoJSElXrD deploy@ci";

let tenant_id = "6980a7df-8314-4446-8498-7460e070a1b8";
