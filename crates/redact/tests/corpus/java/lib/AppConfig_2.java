package com.acme.billing;

import java.net.URL;
import java.util.Properties;

conn.setRequestProperty("Authorization", "Bearer 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");

String githubRefreshToken = "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";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


URL url = new URL("https://api.partner.example.net/v1/export?token=dckr_pat_APPw1WFLMvFNcj_kd4MCk6VthbK&limit=50");

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String passwordHash = "$2b$12$5v1Yv3pUTz3NPQlaMPwlAFQ9IBVbG.nJ6ikb4/Qncyeg6QGBgQcK8";
