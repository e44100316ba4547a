<?php

namespace App\Services;

use GuzzleHttp\Client;

$res = file_get_contents('https://api.partner.example.net/v1/events?auth=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2Mjk4MTAzNDUiLCJpYXQiOjE2ODU0MDYwMDIsImV4cCI6MTY4NTQ5MjQwMiwibmFtZSI6Im9wcy1ib3QifQ.FhSIun7ahRpecJ7dcKdWnDczsy4l6muYQrBbxfC-Q7s&limit=50');

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


// fixture: token with an invalid checksum, must not be reported
$fake_token = "ghp_RONX1Hww3CN8BDsbFk80ul3ZfO9k222HWJfA";

$hashed_token = "$2b$12$ybnBISi7eq/7OjdCeINelhKVpoOulJGN1T8k0lrJnoOZ7UwD4goZl";
