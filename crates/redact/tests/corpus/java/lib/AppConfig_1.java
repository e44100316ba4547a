package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String apiKey = vault.read('secret/app');

String authToken = null;

String paymentsKey = "rk_live_DXLEwN3VZBPcQgKArnQW3Rmbri89W6kdBi";

String accessToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2MDc4NzM0MTQiLCJpYXQiOjE2OTM4MzAzNDMsImV4cCI6MTY5MzgzMzk0M30.4ET_h93aMIOITDvjgyuVqp9vdrMuAODJ4xpuqm9b75I";

String ghOauth = "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" + suffix;

String password = "%(DB_PASS)s";

String githubToken = "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";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}
