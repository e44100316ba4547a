<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$token = get_password();

$authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQbuYniOBoQNCA7Z9SUwnKt8gHy/lko9jAf7OVz31UOBdAq5fEgDmKVBEIkwuhh/hWDu1a7YsVF/P6q6mW8H2d29209Wo2hjwIam5qvL9wJnYaFifb0FLwRYij8GFgp47nmAc+TMgsnePSWA0GnlaWHKLMYc5SXRvMd0+eFn+sIwB+UIkkWzne6m5/PYLi8RiZWG+Iae6U7taGZ54AmMH0AiehN+6khs9FQl7GKuEeMtWtcXO9qhbrdQ2PnVBe7cj2FVC/6kBZY5zrgZIXLavOY9PxgWFZGa4qq8KUoL08YWmJitG/u9PcSSwFfVBAcsryw77CdISxVE+qsICKsKa9 deploy@ci";

// fixture: token with an invalid checksum, must not be reported
$fake_token = "ghp_pOD92nka7RkyqU2z8yMTsL0SRI43RP3WE70A";

    'anthropic_api_key' => 'sk-ant-api03-KCj1bKheER1HsVM-1cAlxswLf5b__xJ-gawBqWILUI_uNzKohcFBL8oxQDBEXPv7JFQbZROVQPO0ZO4_24D0C512paqg8AA',
