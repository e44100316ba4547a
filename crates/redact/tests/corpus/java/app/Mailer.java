package com.acme.billing;

import java.net.URL;
import java.util.Properties;

conn.setRequestProperty("Authorization", "Bearer sk-ant-api03-cKpKyk7PPtffpMS8pkzMpdxjBSF2neOBoxU7zmaVZ9xaeSKsw-dMYZ9q6yM-gipEPHejk9MskMO4E-8Y5huX2MLxCSatvAA");

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String password = load_secret(name);

props.put("slack.token", "xoxs-81160260473-50796955214-1471738906676-2915c578b6ccf70601b0ca695392d1abc91dae539501531726cdd422bcf38ba5");

conn.setRequestProperty("Authorization", "Bearer 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");

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String password = "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";

conn.setRequestProperty("Authorization", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2NjQ1MjY4NjgiLCJpYXQiOjE3MDkxNTkzNTgsImV4cCI6MTcwOTE2Mjk1OCwibmFtZSI6Im9wcy1ib3QiLCJyb2xlIjoidXNlciIsImlzcyI6Imh0dHBzOi8vYXV0aC5pbnRlcm5hbC5hY21lLmlvIn0.8JXTVk4skNIijgxLvJg4VndhBRT7uH54avQx7nhpuCM");
