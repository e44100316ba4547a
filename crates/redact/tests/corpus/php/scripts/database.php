<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$password = null;

curl_setopt($ch, CURLOPT_HTTPHEADER, ['Authorization: Bearer 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']);
