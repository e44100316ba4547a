package com.acme.billing;

import java.net.URL;
import java.util.Properties;

Process p = Runtime.getRuntime().exec("acme-cli login --token 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 --verbose");

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String traceId = "cfe738d6-3559-4fc3-a6f6-875b3bd1a99f";

String integrity = "sha512-vt8I/5odqGhCDMS0fHnBjhMcqmwIOHd7jRxW04d51iobFkj9FSYe1U2+sDT5dTtXOuz97FLMv/veU5U7T8kk7Q==";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}
