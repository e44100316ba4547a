package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String password = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

URL url = new URL("https://api.acme.io/v1/search?auth=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&limit=50");

String tenantId = "7042d9c5-4335-4c8e-91c2-f801b25a745e";

String integrity = "sha512-rKtJwLVtif6WmEX5oLb1JljfDxtc5FLr1qnII04XXNdojzWsYB/MjxdpyM8Bjpf9mNCPRStAdmKSPoYf37V+ug==";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


// TWILIO_KEY_SID=SKa86264688a123192f3b36ceb1aac98c5

conn.setRequestProperty("Authorization", "Bearer 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");

String gitlabToken = "glpat-hkQfCZjofy8JtQ4I6WeA";
