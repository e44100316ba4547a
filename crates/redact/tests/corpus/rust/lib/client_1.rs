use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}


let icon_data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUt44MR0j4EsDZp4PxCg4/d0TX9YvMvu9pypun35ocX5EU7SRdXeKuAkvO+fWJHBAIsESUi9m6HfQCwHF0y52IXo5dZwU9gSy8+/5pCLG06bqW3R6rflzRWoaWDkcFtBl2kdAEO8LxVK18b52FdHehtaf9Kt4ySEmlVAdVFNQ2bzPtBMdH1LEDnCacJfYtnNA/xVmY7A9i8karYoGNUEQxGk=";

let aad_client_secret = "s7p4Q~c8-m0QVeE5gyUQWcDNV2kBwJ~qal0cTon";
