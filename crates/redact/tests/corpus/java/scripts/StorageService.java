package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String npmAuthToken = "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" + suffix;

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


// PYPI_API_TOKEN=pypi-AgEIcHlwaS5vcmcCJeJY0Bndp1Xkw47G45ruRG2uD5aAyaf0otzIIHr-qUoJecf3jQNF5aXffKMNiua8pXLkT8QhCSowS9slhs_RkujBvkiTHtegPgSEdFRx9iCs5EfZw-jVn4VvOPhaaIou_-mAmLaEBfKyx8_4FTZuLkaWDQit1N

String apiKey = "dckr_pat_EXAMPLE_EXAMPLE_EXAMPLE";

// old azure storage: DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=j4XAGdPfWp1zTMf4WRkoy35WnKxCTXTWZ2rW0ckL2u2iDHuYG7ut9xH4qaykx1+MXxq2eOr3CmW7eQM1KUGarA==;EndpointSuffix=core.windows.net

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}
