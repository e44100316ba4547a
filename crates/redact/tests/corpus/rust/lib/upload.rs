use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let secret = None;

let logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUq263D+huZXe0kPa2CLkKZ/N5Pefzgp0Y69Dg3eNJrWRQ5jBvzJsfUrM0Mn3B8JCe1aehhnIOtLkfsJQ5ECnwmRIlG7vQCYvt76RbCkzSFENyqh8MpP1asGEA3S8Po8LnugB5zqaEDl9fYtgW2P6fPA=";

let npm_token = format!("{}{}", "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", suffix);

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let mongo_uri = "rediss://reporting:QR_lMkF-n9NsBt-@cache.prod.svc.cluster.local:6380/billing";

const SECRET: &str = "HwdS3MEkEb9R!Z8vef5TEq";

let azure_storage = "DefaultEndpointsProtocol=https;AccountName=billingexports;AccountKey=DbHfzwrSUEGnH8GDxe9y0keCIwrfojN58a7LVGa876LdG4fNp1GJSDVeB9AcripJ/EfXUO0LI5NMUJaWCtQuDQ==;EndpointSuffix=core.windows.net";

let token = std::env::var("TOKEN")?;
