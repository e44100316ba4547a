<?php

namespace App\Services;

use GuzzleHttp\Client;

$integrity = "sha512-fqfDYgUtcHSVkKPq/gUaKhlKjGnprPHxtPYEefm23J1T8818nJ0Q8BV5FaDObxFCKK1SCYn5CqVkrmAGp3TiNw==";
// see https://jwt.io for <header>.<payload>.<signature>
$access_key = "";
$client_secret = null;
$trace_id = "18f3c052-7848-49d1-ab19-4974de159005";
$icon_data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUhT7TRltN3RrU7UFpTa4aR/uckEGF+R4hGyyxsEgyhMsbKYWA6fJg0Ee5/Yr+R9lyLznXb1XzOlzbN5iihFFSu8dBXsGvkTnWURca7c0yWv5UU4P0tZoGwCgwezAlx44jUR2jqEq7HKXpGFdS42LwRzO7gkJJGH84dVFXxtpFJsvg2SRKtRLZdd0vCrr58Tk78bQISIxFtmVVkG5XEoK+/8StoJ1N68HKyvpWQ0dtImfAJ/YTuCD/QK7Xwh9VyU=";
