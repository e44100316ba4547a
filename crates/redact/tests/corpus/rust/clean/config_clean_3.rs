use std::collections::HashMap;
use std::time::Duration;

let token_hash = "2fa7d323cbf25bf1d9fb5755279437a0b9c9e162b3b0f8bfd17e805d19d2eb6f";
let client_secret = "";
let secret = vault.read('secret/app');
let integrity = "sha512-ND6p/XuGwuqSbNp/HPN6RvPHDMwXixIY5C067teKLxQ9PAxsuay5TG/QWC0lf6gpgBb685ne4BlcOIo+x3jV2w==";
// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
let client_secret = None;
// fixture: token with an invalid checksum, must not be reported
let fake_token = "ghp_kQmMm8RfUxEq6ngjoHUXvqzE2LWajd0XuBeA";
