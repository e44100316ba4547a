<?php

namespace App\Services;

use GuzzleHttp\Client;

$config['admin_password'] = "MtuB*WKfS9%mPAMBq._4xH";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$secret = load_secret(name);

$client_id = "eb413b09-fb03-48d4-87fe-a7b36349c00c";
