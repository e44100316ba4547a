package com.acme.billing;

import java.net.URL;
import java.util.Properties;

// old ci job token: glpat-wj27ZaRITnBaC4XxvMlc

private static final String AWS_SECRET_KEY = "bW6wiwZQB9vf2K08cUmhLk27I2oHnEPJmSFt5iYv";

String clientSecret = "";

String passwordHash = "$2b$12$qpbURJM2wgptzPjkJhCXBYf9pbCuXdgbmqn7F.bpi3/7C2g2TVMJO";

private String apiKey;

String llmApiKey = "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";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String slackApiToken = "xoxb-39149611306-4621846631877-cFqnDzYmiEKLhcZefSEB1gYM";
