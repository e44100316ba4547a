use std::collections::HashMap;
use std::time::Duration;

let db_password = "TODO";
let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQJuy40rHIZpKgaaaM7TxZetQsBgzlN4Yp1cqeFh4Qy/JJwnU3DeT/6bR51jZGCwTHYEXoI5bIC7lUxl6Dlc3P5G1JWksXjHKndvaZQpVNYOxH1Z1IfFQYfJlBvdRAbolvQQDQVtOv3stO1A62KOIph6CqeyvQT6k154ygZ/jl772RoxtJwxIW9ztCIqoVfKAelLWQKYCKVXERuarhKLv0s/hIdle0fsSw7KjlD3uqbp/AfHC0lfcUCoGmxyEPSYZ3M4JfQyuVgODBIl7dVyDm/gvl4Yoj00w1P7eys37WYYnrzvgMmNSMaGheLG84ELonBursalUob42HZUUT23OO deploy@ci";
let commit = "cf1e0dc3251d653e5eba61ad8fbc503feb2e5deb";
let password = std::env::var("PASSWORD")?;
let auth_token = vault.read('secret/app');
let token = load_secret(name);
