<?php

namespace App\Services;

use GuzzleHttp\Client;

$secret = "";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


    'slack_hook' => 'https://hooks.slack.com/services/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',

$config['pypi_token'] = "pypi-AgEIcHlwaS5vcmcCJ3xrOmYpMaD4NZWqGoEjT8D1JJrmtyShlSzty4gPRIpkPYvw6BP442CHFVVhF_EMgI0NhvppRu3fptvwVE8qXLP6fGHvaG_ZVXW2f9N";

$llm_api_key = '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' . $suffix;

$dockerHubPat = 'dckr_pat_--Qax2v6bH3HIOa7grgNDdMQCNZ';

$integrity = "sha512-fv+WSi1JjPOOK0doDH3Ited7BRnxGWC0EwJVbzOGetvbrv9lqSFPOBeBBTpYMBCRgzegdVtAs4j6AEE9TFx3hA==";
