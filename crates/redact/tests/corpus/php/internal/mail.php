<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them

$password_hash = "$2b$12$msnOPs6Q6lkqdFJlih.M.qMn.aibFtz986ujQyxrpQ3k87l.ygyKx";

// TODO: rotate claude_api_key (was sk-ant-api03-jwQyGHjWgTCNxnQBd53CPh7_wuj9wrNPC5shM1CpsbqJSsuoDj4ZpfU1pLE-0f4dvucOqyiW4Z2UYyPPhCMu7hyZSfwK-AA)

$token = null;
