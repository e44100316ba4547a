<?php

namespace App\Services;

use GuzzleHttp\Client;

    'webhook_url' => 'https://hooks.slack.com/services/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',

$config['payments_key'] = "sk_live_v1DW85a0gWAvqVXfgWj940Ba";

$logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUtrYPn3XfRUITB4nZaoyigBzI6KI+L3grE4TKw6g1atZOIezpAsjCWaTY5OiogOypgHeDFTd9WFUmZw8jn6Yf4A4tfLOrZo0oyVH+MoA241t9pNeOncRC3zlrTDOKHXAi2Ec68fRgJCty84jmggac/P5SbparRmK6YwdFqpY/4nuQXzaavYs1ihqmyLeretQqaeGRCTlYM/qsQhzxZN3/AFRyElVkAZwkoKbs/hs2ZbViUOf16/iklWgAhq4cEy3EoJc+MeEcsDKvw==";

$client_secret = vault.read('secret/app');

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


    'anthropic_api_key' => 'sk-ant-api03-nGMHK9T-dxGLYUqf_3nXYt4DlCsB7-jRVi9SfLz-ZkfY4XvORhWRk6LAjfMM3awaf5Dww46VxOrqC_NwmbJZbMssxLmvUAA',
