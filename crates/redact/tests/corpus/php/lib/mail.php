<?php

namespace App\Services;

use GuzzleHttp\Client;

$database_url = "postgres://postgres:postgres@localhost:5432/test";

exec('acme-cli login --token=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', $out);

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$twilioApiKey = 'SK19e7a67d302d53dfd01b9e635e54efdc';

$asset = "/static/chunk-vendors.f87e0a5314a683de.js.map";

$dockerHubPat = 'dckr_pat_QOyyXFhuXyY6kNroO_v44C0_d2x';
