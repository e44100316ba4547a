package com.acme.billing;

import java.net.URL;
import java.util.Properties;

conn.setRequestProperty("Authorization", "Bearer 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");

private String secret;

String gitlabToken = "glpat-3gt-YlifBsXbq7Y1IYE-";

private static final String GITHUB_TOKEN = "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";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}
