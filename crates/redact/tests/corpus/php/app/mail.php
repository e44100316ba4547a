<?php

namespace App\Services;

use GuzzleHttp\Client;

$db_url = 'rediss://billing_svc:i_ueWLURGjbZvaE7ToKNYlYTOt@10.0.3.17:6380/analytics' . $suffix;

    'slack_webhook_url' => 'https://hooks.slack.com/services/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',

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$content_hash = "9096ea54f6981a1f1c4fb0202c5f5f9e9ecd9e6aa747a75805c51268e74ae27c";

// NPM_AUTH_TOKEN=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

$checksum = "0d8b800acb478cc76a83c2e91c98d296096b6f07ee73a8df28fb5f1e28576e73";
