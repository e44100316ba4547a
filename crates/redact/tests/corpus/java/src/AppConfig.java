package com.acme.billing;

import java.net.URL;
import java.util.Properties;

private static final String ANTHROPIC_KEY = "sk-ant-api03-PlVNJsIDaZEePZU4NiUydXK-0C-09yra856KHdXPqFpgI7DKYa2jGP7J-iaulpNs-VcF_5XboCV2JbdbHdjCA6LYD7YVgAA";

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String databaseUrl = "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app";

Process p = Runtime.getRuntime().exec("acme-cli login --auth-token ghs_gnTFl0j59QUL54R7qXCMAyfLNNYFyT1awpB7 --verbose");
