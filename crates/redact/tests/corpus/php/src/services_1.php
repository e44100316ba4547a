<?php

namespace App\Services;

use GuzzleHttp\Client;

define('GITHUB_PAT', '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');

    'bot_token' => 'xoxb-501783875813-8711992694913-eNqwOm0b0vNC1icXkZXQd70a',

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$sha256 = "a88334a8fca9d18a2c446f2d60f047cbae3047fff2462e52175512eb92736215";

define('AUTH_TOKEN', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2MzMxOTQ1MDciLCJpYXQiOjE3Mjc4MTc1NTgsImV4cCI6MTcyNzgyMTE1OCwibmFtZSI6IkFsaWNlIE1hcnRpbiJ9.r0S-KYRQ0VK27Ad6ETbftvvg3JJmU8CLRKGfyUmBD5A');

$res = file_get_contents('https://api.partner.example.net/v1/events?key=sk-ant-api03-JpBgB_03KSPw4NogkqpaBUVnXiXXUKzxYl9DpGHpCf1yygNTNi0NFjTsYF7VTA1Rmy8NINOcG2B2l7IOhsKWm278Vt4sGAA&limit=50');

$password = "REPLACE_ME";
