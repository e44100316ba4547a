package com.acme.billing;

import java.net.URL;
import java.util.Properties;

// see https://jwt.io for <header>.<payload>.<signature>

conn.setRequestProperty("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI4MDI5Mzg3MTYiLCJpYXQiOjE2MTI1NTA2ODcsImV4cCI6MTYxMjU1NDI4NywibmFtZSI6Im9wcy1ib3QiLCJyb2xlIjoiYWRtaW4ifQ.Vn2032wFvkF_bX9Af0pCyJZ5Scq2HTc6s53K6BdQ9fc");

Process p = Runtime.getRuntime().exec("./bin/sync --auth-token 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 --verbose");

String accessKey = vault.read('secret/app');

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}
