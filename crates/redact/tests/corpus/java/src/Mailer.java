package com.acme.billing;

import java.net.URL;
import java.util.Properties;

props.put("youtube.key", "AIzaLCsKmwFQ8vvu9dGYPqov6Ix7eVXDNpp3ojd");

String clientSecret = System.getenv("CLIENT_SECRET");

String brokerUrl = "rediss://root:e36tMf-rJYR.-@sql-01.corp.lan:6380/0" + suffix;

conn.setRequestProperty("Authorization", "Bearer pypi-AgEIcHlwaS5vcmcCJOT5EET565FarSTOsoMOKOvA4wD3Kn-N8cd_tC0-beBDETvWnZA243_0hATMviOgwpHaih--l16GugJBIgoLb_ZZGD3LzAwFnRBT_Sv3tHzqBeb2SGmVRKu4Xt6ih9e5BOinw6AeX");

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String databaseUrl = "postgresql://app:<password>@db.internal:5432/app";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}
