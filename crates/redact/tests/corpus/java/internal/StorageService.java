package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String commit = "dae84528f4e7fd79090cdce31a698a6e45bd68f7";

conn.setRequestProperty("Authorization", "Bearer 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");

conn.setRequestProperty("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIzODk1NjM3NzYiLCJpYXQiOjE3MTY0MTMxMjYsImV4cCI6MTcxNjQxNjcyNn0.72mTHfGvkzrD_GHJhnBgFP27UC7AWK7cIcpZ8Z0bf0Y");

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


// MONGO_URI=rediss://admin:hkLMkI7joPgPGZ5qt39ud4qMa89@pg.acme-corp.net:6380/orders

String accessKey = "CHANGEME";
