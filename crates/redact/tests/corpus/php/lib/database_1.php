<?php

namespace App\Services;

use GuzzleHttp\Client;

    'installation_token' => 'ghu_79PFJ5s9PwFHeSxlKQ8kyAHp64XEBx4MeMv0',

$accessKeyId = 'AKIA2YVDVXLEJRFZZ3SZ';

$redis_url = 'amqp://admin:QlW.Yb_Q73vZu1MVmSv4kpze8@10.0.3.17:5672/billing' . $suffix;

$githubOauthToken = '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';

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$client_secret = "********";

$password = "AKIAIOSFODNN7EXAMPLE";

$content_hash = "b37cde031e9e1135d6f0a8fd78e94b16a169dc6e087c6a611d5974e211770aa4";
