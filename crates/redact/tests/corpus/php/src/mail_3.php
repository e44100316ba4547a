<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


define('INSTALLATION_TOKEN', 'ghu_iSEJTpwOc5N3JexAXXOisCH4xgDwzY3q3D8m');

$awsSecret = 'FrjGm1q4iy9zMYerJRGiy6CXsOY3B+UYVLw+OjUn';

$api_key = null;

$access_key = null;
