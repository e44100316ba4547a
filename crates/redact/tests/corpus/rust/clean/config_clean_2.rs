use std::collections::HashMap;
use std::time::Duration;

let token_hash = "4fc97a950a0d9af5fc0d4dab52204f1d5d83a2a8767c930e4375d36fa77b6116";
let token = "";
let api_key = "";
    pub api_key: Option<String>,
