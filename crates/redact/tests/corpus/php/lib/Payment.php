<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$password = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

define('TWINE_PASSWORD', 'pypi-AgEIcHlwaS5vcmcCJXiYqUT68Wu5X1O5-fpu50DM91F9HOV65XHliT-TCrdFfIj8tYxnt58HAASzOsQvn8Ks4_DOZYl8Kc-9mkCCGJIdGr');

$authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQOhaWXAa7lUVLyiVp40akZ6c/W3CtOPw07sUb2pxosqOUL79ssDZsM5GAchl8rC1eLT8NEGjmV0811uo8s9PTKWkIpR1LbkWclFWveJDfydze8gdBFxU8Sr1eayOS2udAAYljGZdPOsGs487PJlsRG/JHsGDwQgV9u58XJHuuwvpx+7xOMx67vsP3w1lupp3ebqNBn7i8eMDTTRsDAyHe+cZqFHtjSg0B85MCe94NLPO9mp7a+3CJfXX0mjwl+24qGa6MmWEvUObUFcUtrMx3dKBspP7HL+NvnqMqsEUmH/nbAEYwW2kpgP3dbqdDxz8VLkQZdzll3OZ4xNVPKyBg deploy@ci";

$res = file_get_contents('https://api.partner.example.net/v1/events?auth=SK9163c79c1ea2a13f55842f5054e753c6&limit=50');

$redis_url = 'mongodb+srv://etl_user:Z~AtOZzx_rVx5Y0WIjac@prod-db-1.c8x2kq.us-east-1.rds.amazonaws.com/orders?retryWrites=true&w=majority' . $suffix;
