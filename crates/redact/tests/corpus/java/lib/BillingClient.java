package com.acme.billing;

import java.net.URL;
import java.util.Properties;

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String awsSecret = "CiQcYNB7kxqV7vNK0JqaaRFXv4s06YkSChc6hFIY" + suffix;

String bundlePath = "/static/runtime.e7bb9eff2e1f863cfcf8.css";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


private static final String ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3OTY3NjQ3ODQiLCJpYXQiOjE2MTg4Nzc2MzQsImV4cCI6MTYxODk2NDAzNCwicm9sZSI6InVzZXIiLCJpc3MiOiJhY2NvdW50cyJ9.MsRYxDGQq5dKYLWFnH7nojb1K--vvKwC3DbrLLlhn98";

props.put("oauth.token", "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");

conn.setRequestProperty("Authorization", "Bearer xoxb-291377794670-8594663303647-hss9etJbCkglv4BoLHJaWdun");
