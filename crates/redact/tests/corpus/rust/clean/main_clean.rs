use std::collections::HashMap;
use std::time::Duration;

let integrity = "sha512-5N5LVAHeAnf4QfAJ3lDfeMA3JW/4j/mm7d2GFDgu70eH/87imUHO8V+eZ734crko9SyxZ+LPYDrHb8Jf6LC9wg==";
let token = "dckr_pat_EXAMPLE_EXAMPLE_EXAMPLE";
let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ2Uyb9dqWH5r4etm93IA6NMQpbI1HHWZaRy07deKGjFc1Wu3VpGne0peUGR5ehBqOsdy7/utSV8689M/zh4k9bz1NgxSDfhRQvcubJC3WkjIogwRgwE0IVRQGBFcPnHF+SRIUm0ke9sl4XdpAJHW6HJjvnW3PWZiCZyeOeezoCy4fjZW/02tMW/2+EmPG8pK60Pvfxvf9XZIJZqUJZPP+uT/W2Xxz6kP2uMvRfethT0PQAWeo0NqI4ydKh85YUul25cGdoQEL4eMsfU/qln6y06HBrckbzoudGll0Wbu9kPYUmKAd3OmfLQydmjTX5ctaxKQFcpC5y3aIRmTVBSXd deploy@ci";
let client_id = "542a085d-5874-4f1b-8256-67925e8d9e68";
let api_key = None;
let access_key = "pypi-AgEIcHlwaS5vcmcEXAMPLE";
// see https://jwt.io for <header>.<payload>.<signature>
let secret = "xoxb-your-bot-token-here";
