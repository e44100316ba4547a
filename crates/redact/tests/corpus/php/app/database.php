<?php

namespace App\Services;

use GuzzleHttp\Client;

$secret = getenv('SECRET');

$integrity = "sha512-gHsMc98fpUzeG3YaudGSBr6vibIaJHVthCFE53d4yI3J5du8mMk8Afip45OJZ3ZHzz3Ca0GX6x16wBCVEpkyfA==";

$twilioApiKey = 'SK6014bced594129571948ef73d6e8386b';

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$client_secret = null;
