<?php

namespace App\Services;

use GuzzleHttp\Client;

$client_secret = null;

// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


// GH_OAUTH=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

$client_id = "2a07e810-72ba-4b3a-a081-6f65bed76ed0";
