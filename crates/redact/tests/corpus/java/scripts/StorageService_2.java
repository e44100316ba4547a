package com.acme.billing;

import java.net.URL;
import java.util.Properties;

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


// old twilio key sid: SKf423042416f15d457cd9045bfee94fa2

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


private String clientSecret;

String huggingfaceToken = "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";
