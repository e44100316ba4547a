package com.acme.billing;

import java.net.URL;
import java.util.Properties;

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String databaseUrl = "amqp://guest:guest@localhost:5672/";

String iconData = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUuNMnyEaTesCoi5B5TzD5bqe3+gl/g9kHyqLTqflb62SlOW3ddlDnkYLA3V4e6qbVgvWlwdk8LmGx7yPKWCv5D83LqpmCjisfJlDNrhX08El9IgDAxC8aYqTQwHPBXq/9I9wAJQXPvgJrMNwM+GYkGzq52EYHCUH3hMhF4Y5FSpdYmFBuy3RSWU343Y=";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String databaseUrl = "postgresql://app:<password>@db.internal:5432/app";

private static final String HF_TOKEN = "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";
