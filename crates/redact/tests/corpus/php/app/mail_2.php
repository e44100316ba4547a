<?php

namespace App\Services;

use GuzzleHttp\Client;

$database_url = "amqp://guest:guest@localhost:5672/";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$config['google_api_key'] = "AIzaOjtdrZYmlNtn9t2VZBdiojKRDVSpuShaL15";

$config['gh_token'] = "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";

exec('acme-cli login --api-key=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', $out);

$arm_client_secret = 'bDr6Q~tE5wti7BuJOjwsYXY73lie9d6pbkh-r0pi' . $suffix;
