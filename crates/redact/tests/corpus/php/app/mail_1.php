<?php

namespace App\Services;

use GuzzleHttp\Client;

    'slack_bot_token' => 'xoxr-877729515411-5056424681195-1Li40rdqvkUjR3VClYBP5JSl',

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


exec('deployctl push --auth-token=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', $out);

// GITHUB_PAT=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

$token = getenv('TOKEN');

$token = "{{ secrets.API_TOKEN }}";

$nodeAuthToken = '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';
