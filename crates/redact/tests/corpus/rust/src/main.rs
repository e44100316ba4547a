use std::collections::HashMap;
use std::time::Duration;

let client_secret = std::env::var("CLIENT_SECRET")?;

let auth_token = "";

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


    .header("Authorization", "Bearer mongodb+srv://reporting:xX.Nw_1XRL2MhXkm3gG2xUUD0@10.0.3.17/vhost1?retryWrites=true&w=majority")

const ANTHROPIC_KEY: &str = "sk-ant-api03-tqWtVHHlv4r5uSV4h6LNcabZlSWHgIbJtXR9Mi8i0J6f54U0VrZZ84OVi9copWouJcyosJdjrJ7qouvEXANwe3lS519ILAA";

let status = Command::new("sh").arg("-c").arg("deployctl push --auth-token DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=beShyM/53+O/usuRbFZvyUbejUQiT4G8Axe5dDg0TkuqDVmaS2I5H24bkXIpV3hA5pToflrKGC1PFP4QdLKPPg==;EndpointSuffix=core.windows.net --verbose").status()?;

let resp = reqwest::get("https://api.partner.example.net/v1/search?auth=pypi-AgEIcHlwaS5vcmcCJ5x7a0ONyYGFCZExvnsihdWlByekuAq9PyNskBuPS0Y4HY2ikge-KosX4o_Yq0lskNfl7XW1W9nxOTFJFSxmHY02wxpnPKlLH4CzRmRA4ykTs3q818-Z4AZzYIbxC5rodrDS8AQB3hbZDgnDySWo0gdb&limit=50").await?;

let integrity = "sha512-F+6WNQfxF68cRQoysq7ZbqB+ptuxto/+aBkJctZY3LUasA6rd7zuBZrWvmfAC0ugZ8ZI1Py5OxUXn5468fTYfw==";
