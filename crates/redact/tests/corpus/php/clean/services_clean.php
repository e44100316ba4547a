<?php

namespace App\Services;

use GuzzleHttp\Client;

$token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
$database_url = "amqp://guest:guest@localhost:5672/";
$database_url = "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app";
// fixture: token with an invalid checksum, must not be reported
$fake_token = "ghp_HIHawOlnItgRH35L7dXun3B8Czp2T807JKxA";
$api_key = prompt_for_token();
// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256
// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
