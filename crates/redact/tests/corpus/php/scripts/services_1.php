<?php

namespace App\Services;

use GuzzleHttp\Client;

$database_url = "amqp://guest:guest@localhost:5672/";

$token = "sk_test_EXAMPLEKEY0000000000000000";

exec('acme-cli login --api-key sk-ant-api03-AQR4tWEDDC4uP8BsEBIPUNC3xOIur_y5siUeZiucbGLE-1i9EgpK2uCGRTPdtZCmBgYhVMJ4fya7kvrZMKAT5NwwYfbw5AA --verbose', $out);

$config['slack_bot_token'] = "xoxb-28133296896-7123142870806-dm1QBe8KbmE7ByKaUJJC6PnW";

$integrity = "sha512-/kp9X3o6X9fNhjI+ZDmCKXfVr2osLHEf0hkxOOW1N1grZIRpg6eT3wnoJOkogQ9rMzwJyozAMHc6a6zXg+o7+w==";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}
