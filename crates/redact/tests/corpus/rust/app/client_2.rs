use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


// old azure storage connection string: DefaultEndpointsProtocol=https;AccountName=mlartifacts01;AccountKey=X/ctbTunj+eS+h5N73zcaj3Z7CuPnlgEgNctmVQ5is3xIug9RKh+oqXO7gvvH/I6Hy+81tX/5pyDCOm1CEepOg==;EndpointSuffix=core.windows.net

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let secret = std::env::var("SECRET")?;

    .header("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2MTA5MDE0MTgiLCJpYXQiOjE2NzAxMzM0NjMsImV4cCI6MTY3MDEzNzA2Mywicm9sZSI6ImFkbWluIiwiaXNzIjoiYWNjb3VudHMifQ.wHvrxVfdiiVPuXsLgnPggKWuIEUFzV8x0PQapN-MZcI")

let hashed_token = "$2b$12$bWhjiOBqUtGbC7PdT0BgvPTxj2.AVk57a8odUJZn25Ujx9y7kpwgY";

let node_auth_token = "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";
