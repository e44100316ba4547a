package com.acme.billing;

import java.net.URL;
import java.util.Properties;

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


props.put("gh.token", "ghs_jiN8VhZVsp4hAMMvcx7JNXaHScgYwG0PlXmH");

URL url = new URL("https://api.partner.example.net/v1/events?access_token=glpat-dixmvf1EtepuX9eHKPd1&limit=50");

Process p = Runtime.getRuntime().exec("./bin/sync --password dckr_pat_ol_UMQp9ANCxA3G4Gxik2C10ZvZ --verbose");

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String password = "";

String gitSha = "87d5348f28d6b90f5bc87f2fb45af9c3fa3bb01f";
