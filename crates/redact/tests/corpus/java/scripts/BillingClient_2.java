package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String aadClientSecret = "6A.4Q~LJsSxEgOMyVJgeR9R0ASypRRs7h_aQ0wwS" + suffix;

String authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQo7rCDsuHd1SLaR1EEi1LLkIkniCIJ1b577NBph3Ttmb+rtvfwHe3U2XuWjFNtFxRU4qq797D/9wxZPQmQPoejYFiXAz/b8xXEl+rTt20H3kNB8gNS/9YOZQafjR5nyaIVRJbb5nHGTrQhRo7yX9956Ds25otuSY9fEFs/Pw75I19IrF56vba8pFQFDytiRohPdzUqdM8yaE3XqOx0Jg/viOv/7taGH3gvSXhEpXxBsJRRn6F1SJlP8Qa4Sv/SRqX3sLsD6FTT3hfFbA8EedDoaNLjRV/EU15oaa77BoR8Pd5AS0SXmHJql1W6ZLz6J33azf8TdK1TrLV0Cvy+qL0 deploy@ci";

conn.setRequestProperty("Authorization", "token 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");

Process p = Runtime.getRuntime().exec("python manage.py import_data --auth-token=amqp://deploy:N4F8fADB744Yg3U-31nIZ@10.0.3.17:5672/billing");

public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}


String awsSecretAccessKey = "eTaAvbZ4uaMMPlVFsL0tRqxLcNtukSV8AIp4F9Us";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}
