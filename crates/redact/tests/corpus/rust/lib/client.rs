use std::collections::HashMap;
use std::time::Duration;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let sha256 = "d7e2257bdd7801eef0a994776d113d900596eaca0f3d7247c0a973c3e846d474";

// see https://jwt.io for <header>.<payload>.<signature>

let cfg = Config { github_app_token: "ghs_TcjrK2eWbk7Pc7w4MYN1FeFzkccw7u2BtMdb".into(), timeout: 30 };

let database_url = "postgres://postgres:postgres@localhost:5432/test";

let cfg = Config { azure_storage: "DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=1gTcQ6lYQdZJq/2htw3roOmiMPgqIxfub5rZg8cqOHaRosVx64QIPlzO8cVr0ZQzRPmZ3AKOBBODf4tPGNPehg==;EndpointSuffix=core.windows.net".into(), timeout: 30 };

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


const ARM_CLIENT_SECRET: &str = "b1C7Q~y9g3D3fzRYFb_h15iBNuWfQL1QXwCX6u";
