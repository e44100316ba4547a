package com.acme.billing;

import java.net.URL;
import java.util.Properties;

private static final String NPM_AUTH_TOKEN = "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";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String token = "xoxb-your-bot-token-here";

String huggingfaceToken = "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";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}
