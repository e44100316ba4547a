package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String authToken = null;
String password = "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
String accessKey = vault.read('secret/app');
String passwordHash = "$2b$12$mlOhNija5ExRNKHRIrlBC6nwKFpdsPktNxPm40Y0cWII2UfD4N38x";
