package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String integrity = "sha512-zkzYBC6Alrf+qUyMsvXSGvl6x6ziTdjc1z7EbzeKhzbTqAwsNxADmmkCAhQ3qjW7lc2OfoA5YfSCjqpE44IO4A==";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String gitSha = "981e3928a720f22d029ebe9d1d2c24e291c1238c";

URL url = new URL("https://api.metrics.internal/v1/export?key=mssql://root:o_NlF0O8xMVdc08cZjYxP@prod-db-1.c8x2kq.us-east-1.rds.amazonaws.com:1433/prod&limit=50");

private String accessKey;

props.put("payments.key", "rk_live_sLTiApb5kl9B2UAVPXIYnYeQ6KDY3fwbWc");

String armClientSecret = "N2I9Q~lGeHfc8vzoHEz1MOt_P5a.A9WjMpPiuprl";

conn.setRequestProperty("Authorization", "Bearer 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");
