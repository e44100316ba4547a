<?php

namespace App\Services;

use GuzzleHttp\Client;

    'gitlab_pat' => 'glpat-NHZ7b9Yyf_Cy-9UQAfH7',

private ?string $secret = null;

// MAIL_API_KEY=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

$icon_data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUnkl2xk6p4DJpSLTbPsfuWC2qzm2+WLaFpknfQ+BqtzRn17RIVQ+iIWrz5xm/TfaN4f1kTFoBAspGsilVLV0uMKMKNca9qRoJQJGbX49JHTdfMMNq88/sqR2CJijGsXzsqt1kb9rYq0t3f4qaubSc/+zqKHogyiqMqjG7Avpmmnc1s0Zc5xp65evk7C3M7Isa4QWQIdUWWNfmK2R96HqC/pr7OUPNUtLrrD/obPmBJF35bbrhJyKSZptmqSkIQ5wGD3oO+WqrcLEbWrbRqnzj3dIBnVRWLyKPh+KLm/0kObKnI2b7pDTQxQxrRSS8lSCt3vahUfJPzGVxsY=";

function env_or(string $k, $default = null) {
    $v = getenv($k);
    return $v === false ? $default : $v;
}


$logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgHjOtxKbJjAyiTi3je6gTP3a+gHHNOPxL1Sw+D+pW12I0es7AxUpMNpcxJXsTvABI1ZpD+1JAtT1+CS63MgfBzvsA1FAO5eUPX3QHqhHolV0o1N6V5eHzK2AXc3lt7DnJYSrYfrGyOUuJdi+/QjXOc5EnNH7G48fnoGp63xNHyoTHeSlGnra9jiXN0SZReYSrtBGCPJYfThJs828uCstRoedCqlrD1NwWvPDJwJyEhPRZ++";
