<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


// old dockerhub token: dckr_pat_m-odt1y32uimSoMYXPRfEDYprOO

$secret = "test";
