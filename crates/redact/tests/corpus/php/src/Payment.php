<?php

namespace App\Services;

use GuzzleHttp\Client;

curl_setopt($ch, CURLOPT_HTTPHEADER, ['Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIzNjUyMDM5NTUiLCJpYXQiOjE2MDE1NjY4MzUsImV4cCI6MTYwMTU3MDQzNX0.SpBo_mLiIhBdSwxvaiDipp1txRnNd_CEGK6lIkUnN_E']);

$stylesheet = "/static/main.e4f4cd9df5c77790.js";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}
