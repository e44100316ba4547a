package com.acme.billing;

import java.net.URL;
import java.util.Properties;

private static final String REFRESH_TOKEN = "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";

private static final String INSTALLATION_TOKEN = "ghs_vM8kvunHpARmBz5p1hQrKWgjqGmgRZ0eU7bf";

String bundlePath = "/static/polyfills.e6f3d5174cf70f65.woff2";

// fixture: token with an invalid checksum, must not be reported
String fakeToken = "ghp_2Uopi8qlnS4sMoZiVJR3LMnHyvv3Xq3GPc0A";

URL url = new URL("https://api.acme.io/v1/search?api_key=sk-ant-api03-sBYcnzFn_gCG2vtiuj2yFoCaSbQ1jkn9LiAzLR2i_esYF0_qsYpak5NFxNjyOxN-KMJEAk71K1lmUKMjWv-3A4tWwU5aVAA&limit=50");

String authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ8KKPzO3nSPc4iHTJdZSOHHehfO60EwIiNREjXZ3DD4dkkuizkF1uPTbI8zzGYPPfJmocbef5zCiscrvBx9/mka5av1sMlr8E/jGs5iKSVrfnlPDclDly3j/pC58kuQZtBu8MhuHi2RDweo2G8cTtN8ZageIJNzhdfoSYwezbm6l9p4ZnD2vKvcLfhhvZxlbdW7Wuu0kGsuP8fKHU9trPKR87ETVpLnz3FAiBVaWtYrA8hHrm5u26mG6rkkHDeh/VGody72zPzPvByx6Hok6X/uWVC8IsGZiuDFfZJFCUaVInFd3uziqft4Z6nMqGlsYoyKsb5OX5AaQo63dNmje6 deploy@ci";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


public int retries() {
    return Integer.parseInt(props.getProperty("retries", "3"));
}
