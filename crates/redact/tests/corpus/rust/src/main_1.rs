use std::collections::HashMap;
use std::time::Duration;

// old github pat: 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

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub timeout: u64,
}


let api_key = "";

let api_key = "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

let huggingface_token = "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";

let commit = "2bcf8bd9155303c57759376eede0b49d6300fa79";
