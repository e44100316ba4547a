<?php

namespace App\Services;

use GuzzleHttp\Client;

curl_setopt($ch, CURLOPT_HTTPHEADER, ['Authorization: Bearer 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']);

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


// TODO: rotate google_api_key (was AIzasM5ckPkBCDVegoPXUguAxaz7rA0S_jybN4a)

$authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQdkXVioXRvPHCZCKtzd/45cdQ03AVTFPv2Qiq4ZeToe1Pk7xQO646aue7+LywbRyzuVOXqD1VvrWM+kEA46r7Tj4GiOvdLhONpZ5A//10N7POQ3q+GkOKl9dHxl4sCIeTJs8t+pm2/g7zQEL15sbSN11Alc6WZaj+p+bKzJlwf6m9YxN/tTneQ0txT8oBcFCsFNRWpq0CIMYZzwAQf+7l+emXsSkinoRaz0Wjy8GalRlH9knR4QG5KyzsH/BAyrnqh76nulh7o1/HkLMv6R3uN2BIUScyPUOAdtaE7RLGbUXAHokp5WJoVA9x5yUJaDFoMbo31WHeBwGCAx1noZMp deploy@ci";

    'aws_secret' => 'ALVFH70ejU8JEK5vR7dV8UfiGIJ4sJUHhrYEfZON',
