use std::collections::HashMap;
use std::time::Duration;

let icon_data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUsG+ELozEHz8ugsRgIFjh15FwNhF2/SoAgE+PrDCOtq1pFX8oag8pnID2U2Gnmi8ncfDojo9kbMZc3vpQ02n+jYP+bzmAGzThbXtLAwSFsYs7TpsTHO/UEJOPD5uISIBNkJSzXTpzlQc1V73dZtkDurJ2tQTo+Hm+1gXvg845W+HWu11cWIzg4bOWop9lKVFBniCLzKQGJS2Z7y6BD1rOgfzTqJEoGhBOFaz36BVdyhhWe1HwJR3JFZuwyymKI28lTj/r6/gvZYnRN+mSfO2PVKI9s95jVqjtlOjbnOzcaeCkE1b+IohWh6keUFk6VtdqH0sPWHv";
let token = None;
let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ2jHPYt016k49MDM1cQj/x2hoWFyU9dG/+/2jc1D+T7mys0GRHnbKTNRvg3mFU6U1MtsfZDHrbnJHbULg7ExzH5fYAkNwpgX2+ZbSVTWss6/EFL+Mm0okDyfTy3RfqDad5zC0OOpC4JUk93akcUskv5168HOFrEqbqFjsXfLNruNVwngqSna9z6G1jMM/cD0O2gnGkZWhmROiwp0NcwInBMJbhkPBBlBdS1wGItaGFPbcWsXmEXGJVkTuqX1PcRXizsOSJ62K7yQn12k00dZMrfG6pFc9KNMVpzrUqM3qMZ/HwBsjhx6jJ3VAdCBl7Xi0EaOReeMj2R4IQ3W4LWgi deploy@ci";
let token_hash = "7b099410bf8f7d57d9234485efc8edcdafbc2e1726ba35b5eb505d14fdd8ace5";
let tenant_id = "f75b386f-3b5b-4dd3-9bfe-a629f2636677";
let access_key = std::env::var("ACCESS_KEY")?;
let database_url = "postgres://postgres:postgres@localhost:5432/test";
let password_hash = "$2b$12$Vcc1SgpNA5Ev5T.XmCncCRYJaluIjTQV3l1kTGgATokcfjECZGC39";
