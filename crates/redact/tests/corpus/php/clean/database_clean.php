<?php

namespace App\Services;

use GuzzleHttp\Client;

$integrity = "sha512-qcXlsyhrFdEfNf/9VZTm6yZYoyeFK0SFiDZcuedHIAa6Ol/cb4oVJKQ1Ge31PURdoSPJegI0y+IAl7I3OYHiGw==";
$placeholder_img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUoZQtAg367Jdvje3tG+TFcnoNJwK43lnvFbfohQltyN3ybPl2cV3YMBJv7xg9JFhBmrFROwsaLDhtjlZ/ZlnWdetI7giq3X6tAe84eLyWLYFltCJLeIhjvXI2TPKQolWBMB9wPyVGb5y0w1rUHwdN3pNfW+DdTUajoaQwmHvUolPOJVNfrQlGOrsgH0p3GyDyFSHtRvV5pUD2d2M5cttaszryjperOs6GeIfKpf5KjvXtjdMg40g2DgqVyCeyXf9c+ff4sGW";
private ?string $accessKey = null;
$tenant_id = "82ad3ac3-ddda-4189-a5e4-d73f550fb298";
private ?string $password = null;
