use std::collections::HashMap;
use std::time::Duration;

let tenant_id = "36b9d00c-6a74-4a0d-acdb-6031a408116d";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2NzM4MzU4MTAiLCJpYXQiOjE2MDI0NDU1NTcsImV4cCI6MTYwMjQ0NjQ1NywibmFtZSI6IkNoZW4gV2VpIn0.Y-T3GmFQWlJWSegXIfax5J1sEtEY-gJtgfESWa6-LfU";

let subscription_id = "dd6b711a-79ce-4cec-801f-0ff7f18f2ba2";
