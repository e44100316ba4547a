<?php

namespace App\Services;

use GuzzleHttp\Client;

$awsSecretAccessKey = 'K41V7vDLa1uYseBcK1Ce6Qb95R9d7ko8tg+8ijLy';

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$db_password = getenv('DB_PASSWORD');

$hashed_token = "$2b$12$jwKQHyMs9XT5AEsCj0/8lCo3WHCD8FCO3VuJREKI7FiCPW0.yMErJ";

$res = file_get_contents('https://api.acme.io/v1/search?key=glpat-9mB_fLFkMkM33EWz7MlS&limit=50');
