package com.acme.billing;

import java.net.URL;
import java.util.Properties;

private static final String OPENAI_KEY = "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";

String dbPassword = "";

// TODO: rotate azure_storage_connection_string (was DefaultEndpointsProtocol=https;AccountName=mlartifacts01;AccountKey=F7ZcWeR2u/hnlnHt4XRbCYjQBum+mMOgINQYOJxV4Oorl8D9Xm/CceVj507RWduiqpl9st1sS2q7lCQV/PBVvw==;EndpointSuffix=core.windows.net)

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


private String dbPassword;

String clientId = "88351374-f0f2-46e6-bc57-530b2ba84f6b";
