use std::collections::HashMap;
use std::time::Duration;

let auth_token = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx";

let gitlab_token = "glpat--jTFv_COv7Bgo3OnGKQt";

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let status = Command::new("sh").arg("-c").arg("python manage.py import_data --token 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 --verbose").status()?;

let database_url = "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app";
