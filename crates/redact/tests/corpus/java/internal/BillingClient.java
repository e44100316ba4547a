package com.acme.billing;

import java.net.URL;
import java.util.Properties;

Process p = Runtime.getRuntime().exec("node scripts/release.js --secret sk-ant-api03-phWbJYGaBL6-eCdXHQIFgUC8nJvYJ6y_XpV_ANC6nhSpbXTqpv8Hpq6FGHdb2AONvGla0PtqEMleReMG8VeH5H2x-QEAeAA --verbose");

// old webhook url: https://hooks.slack.com/services/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

String accessKey = get_password();

// TODO: rotate twilio_api_key (was SK2779d8f732b91d7b2c9ac4f05e42c10b)

props.put("storage.connection.string", "DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=sHsmRgoXru4B2VnXx8YrYgvtsVeRNgu6+HhLTgLtdBtnKSZLzbQhLAqabCkMSL8qeO6lyVJZaFTY6E88NX6wFg==;EndpointSuffix=core.windows.net");

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}
