package com.acme.billing;

import java.net.URL;
import java.util.Properties;

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String accessKey = null;

String mapsApiKey = "AIzaGTLhtaofl0VnGqQgL3OcWIGxukzyPaqfbMu";

String oauthToken = "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" + suffix;
