package com.acme.billing;

import java.net.URL;
import java.util.Properties;

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String googleApiKey = "AIzahkefbRgLJ84nP-0yzD929EaGrYZJ7ySSnUw";

URL url = new URL("https://api.metrics.internal/v1/events?auth=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&limit=50");

// see https://jwt.io for <header>.<payload>.<signature>
