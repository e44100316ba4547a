use std::collections::HashMap;
use std::time::Duration;

let storage_connection_string = "DefaultEndpointsProtocol=https;AccountName=mlartifacts01;AccountKey=X/ciSe0//pgOsnv8OzWVGjqM9nLlAMg6oH6+mOcsmK9hUUzmkBW/URVZq14K8yCQsaXyJZ9d6TwK4j6+Bxdabw==;EndpointSuffix=core.windows.net";

let password = None;

let mail_api_key = format!("{}{}", "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", suffix);

    .header("Authorization", "Bearer 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")

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


static OPENAI_API_KEY: &str = r"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";
