<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$request_id = "bb0ac2c4-f705-4e16-ba9c-462a98173c03";

$pypiToken = 'pypi-AgEIcHlwaS5vcmcCJ1qEUVOjTJ9RKz9AfgSXOSgwdDNkgIK04H_ZjvNUdRsShgMEmaotDmqOjoB6v';

$placeholder_img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUpb+A1DTvd33+2mbFAPlhGXxsrOuj/DSAK8pBUg/eXKxbqq85yzNQK7xYbUAioSo6ee1lM1VnYCYX7N5BI4aCuam0DlAA2Dr1IR4Xe3JGiV3tG9VRZ+9rW7IJs6XLrirq5rAkXG52YKYeuN7nRGGHKi82A9+PMhwY522/MXJsPz03lA2xs6OIgz880+BQF1J6EsO+rc4y3VkVmWO1Yb6DbLdhj9RbaevjlSVfT7fcmzy0K/pfMO4LKrs80drarg/4rFHpOfPVOXg6L3hCu6Unt9EYA==";

exec('./bin/sync --secret=rk_live_MOigIcLqHbhy6skRaXvH396Sc569QpPVyd', $out);
