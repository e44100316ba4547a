<?php

namespace App\Services;

use GuzzleHttp\Client;

define('AZURE_CLIENT_SECRET', 'Sg58Q~4efhhAHpcA~4AacV4A_g~NpxEizkOIGX');

$logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUhj9aH4WyzQq3azMGHjMfnL2dD34xnX0UkzVI7nY3AZ5HnKuS9ZyuYzT0j8UTK7W+7x1QP2fcm0XzESRCxbdJY6l1LW6z7hd+ypLXkV3wTD79jGGXtOwUiGWP01IVkG33L7lrKodbpVFC32FtE6Jri19DhcRgXzDKwBOFU2xiRZR9lwgcHVDOYcYInzu6eh70C3CeGrlBKX/4A232PNEf1FyOw==";

$authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQzO6YqNrgxcu5g8o/LlUDxZxtkV53Svn0Ken6n0sWDrzyNl1enPdcxSqZJcs80OHLUoZguN0VsEmi2r4F1AoJ1bMcWyB2meXOpukHNvlBhJvYQTmznx+vDBjMHBx8+/Hk/lipOig78vVzNgiVChB6JiMjRYlR8S0bQ39u8wcn/oZQWTn+Ek4AJncG9mhwp5bXXh66Ub93paIt4/m8ig0MLdI8ES1XvVkX7rdgS2C6T4+G2aHpHkiJ42oa6mtzSqBnKNIFNm+MhhMU1vGAn7ItO0AJ1rsy8ZWlL4gz7Mvq2IM4UGCS+26C0K/mX0aQHGnE1ytYeq4wVxdgnC7ciIsv deploy@ci";

$azureStorageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=mlartifacts01;AccountKey=UftSUniCOz8UvHyvjrKqW2jmxeW6w5mvpBz+IXqTMtcrKVUTkbdFuH3HgfYGsbhzGTH5eaN25zKK9JJdRu4pmw==;EndpointSuffix=core.windows.net';

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


// fixture: token with an invalid checksum, must not be reported
$fake_token = "ghp_F1NJEBdKHDNZmDe7sQ0Bsp9hip3OYS4OJVHA";

$slackToken = 'xoxs-61840003576-32448430157-4531684412715-2fe072c859dcbbe5ed2a67f007d5bc5124e74d2cca373076c9bb8c1f9e4fbdf5';
