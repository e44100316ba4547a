<?php

namespace App\Services;

use GuzzleHttp\Client;

$config['github_oauth_token'] = "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";

curl_setopt($ch, CURLOPT_HTTPHEADER, ['Authorization: Bearer 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']);

// TODO: rotate slack_hook (was https://hooks.slack.com/services/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)

$authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ9mM+QOPB2Znlyx29Gd4zDlT6u8tcYlUcJB9SabSDPaCbVmozPTFCFAQJVkeOF2Cf/mrn80SlQQ10Kmv0aOtsGWWoBoSanjvxD5E3VleoWlXRLWb5H9/UFG1q1SePeGtocdLzC2NUnMu2MKk5430WI5SOWbca+scP7eKU6NsLZIejGQeOp0RTwcjB6euMoJLxG25C/WAtTb+sB1BVIZZX2keIUgPUHMAoZiGTNo9Wy2O2PCf4desAg1YvQz3iNkO6tileqfweaDfbVsyIX+ilnLQ0boFFDXNcivdPJs0+HsOcEscAuseBEBwfoNwJF5nE9+qN318L01t5x9za71PQ deploy@ci";

// fixture: token with an invalid checksum, must not be reported
$fake_token = "ghp_0GQKuN0mbTGIne87MxebtNiUrDNERx2v3MJA";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$stylesheet = "/static/vendor.55fe86c8d073591c.css";
