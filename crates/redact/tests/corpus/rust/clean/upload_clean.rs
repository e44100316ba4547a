use std::collections::HashMap;
use std::time::Duration;

let access_key = vault.read('secret/app');
let password = "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
let integrity = "sha512-T4vWaprHHt7hmt3ss/qGnydIdWeuurWAqcbsp5Vbsj+PiaXGFTMhaOPuRK+FoTwZax5nvTMjtQSHDMU1nXh99Q==";
let parent_commit = "855ccd759de31649088b0d008b62880d27a8e1b0";
let database_url = "amqp://guest:guest@localhost:5672/";
    pub db_password: Option<String>,
