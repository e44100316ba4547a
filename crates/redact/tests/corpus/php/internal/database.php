<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$placeholder_img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUiJX+Dp1oHpPXmqH02K1NP+hcK9QIJfqvm7swNkxuQkRgAyM0b2BEeGxjxpTy34F5mTnqLeUfO17729wGpeWvCOA49GaKQ6Rh7Hb48WCuA/BID26chJ5Ok5ad6JhT0lQs+sQvcsRGTiCBBjUiw==";

$asset = "/static/app.863f06381590fdc8.woff2";

// AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=gLMSegIepRKMIlRm13urM6L0u5elnTtACtNOlOIiIrVch5LQ1tuETRNIvYYcchNrit27tFFokVsSVuTCCZoFyg==;EndpointSuffix=core.windows.net

$database_url = "postgres://user:password@localhost/app";

$openaiKey = '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';

// STRIPE_API_KEY=sk_live_DoGSDFXhSDCAnc6wNtLmjpn1pMH21jvCYi
