package com.acme.billing;

import java.net.URL;
import java.util.Properties;

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


Process p = Runtime.getRuntime().exec("deployctl push --api-key mysql://api:n5Lp8Bm9Wee7au7Qqk1@10.0.3.17:3306/app --verbose");

String databaseUrl = "mongodb://localhost:27017";
