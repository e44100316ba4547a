package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String tenantId = "39305ab4-4f74-4e73-98bf-8530894bc5ab";

String hashedToken = "$2b$12$yDXdBM2vRIe1ItShb1Cj8EKgUuGZlR7iaSs4y.QoEyPJLp.B8h8Ng";

String dbPassword = get_password();

String token = "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";

String twilioKeySid = "SKcbb61f36150a12089e0327e3b8073353";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


private static final String LLM_API_KEY = "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";
