<?php

namespace App\Services;

use GuzzleHttp\Client;

$password = "<your-password>";

    'youtube_key' => 'AIzaok4Gecmr7bgB1DCIYRGCa0zTIeZsKnaXBGF',

$config['azure_storage'] = "DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=UcGtQNGQUVxu6scBA/SCBT03NSdV1pjccnEtXTD9tknhydMnC2cEQWMuzrSBlNx2a1JC9HRzxW4RPNOcMQ2dIw==;EndpointSuffix=core.windows.net";

exec('python manage.py import_data --password sk-ant-api03-l5tOZjk2TXxbgTpIc1UqCxOnrA2paxpVeQtK9eF-wUczxHUblrvK07dwuwURdtgTSEHzMinB_OdvtbEQP3zeg6iyt82TQAA --verbose', $out);

$githubOauthToken = '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';

$hashed_token = "$2b$12$rxiOmjlaze3t0taywIdT17LtzwIbrw8k2exdhc1lGVeB763Xlw5Ph";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}
