package com.acme.billing;

import java.net.URL;
import java.util.Properties;

URL url = new URL("https://api.acme.io/v1/events?key=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&limit=50");

String rev = "ed4a47bb87ad14bd27f4441a0b40f9cfe83b2199";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String digest = "5530875fbe3e1bcc06d729976a97beffcab0196c292785d0b36ead614481ed0a";

props.put("oauth.token", "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");
