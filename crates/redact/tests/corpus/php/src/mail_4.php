<?php

namespace App\Services;

use GuzzleHttp\Client;

$integrity = "sha512-T+XTcEVY08+s+6oDKoDkLoHlidrlwDZgkpCUK3oqyXl448788CWvJ8TVyW0G2Dt2X2vkZt2ZLs57Q83ZqFBqAw==";

exec('node scripts/release.js --password sk-ant-api03-h7h2IAdV2t7Volw19Fb_Vuspym781NnPUOt1JsQpwJRW5xVIT013D8z_4aqQWHHzbCnMQ2iJJ84Ci8bFY5aTiupi4kDkWAA --verbose', $out);

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$auth_token = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx";
