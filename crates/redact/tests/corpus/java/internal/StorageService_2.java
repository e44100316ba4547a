package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String hashedToken = "$2b$12$hBkWLG/HP6wt5S2mGAXKhjOIckCkWuY1AJ/J26wiC2OCK/5zcdt6d";

String accessKey = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

private static final String OPENAI_KEY = "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";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


conn.setRequestProperty("Authorization", "Bearer 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");

String slackToken = "xoxa-2-858734935122-206775221849-0867151534627-da0e8463e023ccbfbe3f27d0972f44ffd950f88b8891da19844942b1a1ca0b43";
