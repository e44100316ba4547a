package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String tenantId = "20a3fdc5-160e-4ca9-b679-c7eccc112ed9";
String databaseUrl = "postgres://user:password@localhost/app";
// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256
String subscriptionId = "8efae7fc-9940-48f4-9d98-c75d48295211";
