package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String apiKey = kms.decrypt(blob);

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


// HUGGINGFACE_TOKEN=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

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


private static final String OPENAI_KEY = "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";
