<?php

namespace App\Services;

use GuzzleHttp\Client;

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$glToken = 'glpat-iCQ6uSmQefYjPiT6VPjN';

$authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ4F179UEpx/EaUMAZa2LyU4hgrGn3eBXa2qn+6g/XtFM36X7y2wIuLA1vmDTfOQ/KVVbTpkK+I8KtHvPXblQ4weSvjxn3xYgYxKeFdayn9lo1/kde+MGV+r7hqTEhhQE4Aw1WvHjrfD3230sF56DNYqC8HjBhR4TXooY+pxk4cmio3reXZwUYifFF/saLmjzbmq3pMHIdIysoS39on8Z2dZG7uEu37idcloYSYG+IcGT00dMA9u3HZY03D/wRza86SBO2lIwbW9fLEzjeKZ+tGKzxQqeV3YGDwE8OWjAXd+Vljgz+09mhayfPIBROAuoDIoBJUPezpEENcmAbEUDg deploy@ci";

$huggingfaceToken = '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';
