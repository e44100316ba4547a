package com.acme.billing;

import java.net.URL;
import java.util.Properties;

URL url = new URL("https://api.acme.io/v1/export?token=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&limit=50");

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String authToken = get_password();
