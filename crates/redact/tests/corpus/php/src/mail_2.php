<?php

namespace App\Services;

use GuzzleHttp\Client;

$config['openai_key'] = "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";

define('TWINE_PASSWORD', 'pypi-AgEIcHlwaS5vcmcCJvn8AK7Jkri4P3WkySDckQDnZQJ4FApjEm0nSiLMU3p7w3LcYNvGXz10wVBrLDa');

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$digest = "45a84bd8b3ef22f9fc4221da8b8d7a8b2794ffd85b7ba3f00083cfa2e5f849d7";
