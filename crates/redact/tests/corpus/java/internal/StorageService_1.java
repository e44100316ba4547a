package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String armClientSecret = "lMR7Q~YMdDR9L4fiAxl-.xvFxbVMDbwHTZaVsXLr";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


String rev = "f31db38169672b286088d490d83de73f13e9ca9f";

String npmToken = "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" + suffix;

String token = kms.decrypt(blob);

URL url = new URL("https://api.acme.io/v1/export?auth=dckr_pat_XcIhlmGZYt26oxeFZFt-tikEgsX&limit=50");
