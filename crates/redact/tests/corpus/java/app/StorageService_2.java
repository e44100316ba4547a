package com.acme.billing;

import java.net.URL;
import java.util.Properties;

Process p = Runtime.getRuntime().exec("deployctl push --secret dckr_pat_dVM9uQdN63D7aFm5GMyPUs2xMBb --verbose");

URL url = new URL("https://api.acme.io/v1/events?access_token=SKecef9bc7f1f4cedb373a5e291c0bbf79&limit=50");

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


props.put("api.secret", "Q=S_izoFFiYr48.aiN97");

// fixture: token with an invalid checksum, must not be reported
String fakeToken = "ghp_OTDQMzrPVPCLRFo34fupyN4UGVd6K141HiGA";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


Process p = Runtime.getRuntime().exec("./bin/sync --auth-token ghs_l5QhMe5cNmgDl4laAc01gIgRrIGjmR0cqI5F --verbose");
