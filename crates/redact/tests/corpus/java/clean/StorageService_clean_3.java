package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKnaeWoW1URdad/FbphbEjFVfa7eVJdTU0Ev2feICw8pKX83N1xxBd09ocDhANRCmrAY01qvu4hCDuw5Cp2e/zfXk8DSdlWe2ZQVcdgVIa8gE6/gSbOqPPNMQdWEZyWW1L0gywYq7hNIK8uWANe1d3idq8Eh1pUW7hYVENxdIgeclMJdZ0Mq6QWkHkMDYh4nhaOPZUcLqBoQj0a4FA2iyQXxVpw+kZ85KCNzFwxl6AKPpAR5R5pJldWeL8eP4SdgCuo6IFF2/b0gKycvSB/9usxQFEozrJUPnCW28yITo/WeZgO5OVZZsHHZ/rysYWHn9P4IONnSIY+r0mOKZj17f deploy@ci";
String hashedToken = "$2b$12$0DwCCplC072yXufvLtTlEl0V8qDy3iGeEJMIgHgffqENQ.CjN3XbY";
private String authToken;
String rev = "7e3c1b971e23700c5915dde2894cf3fdfeec024c";
String hashedToken = "$2b$12$P6VTPCauiwlUZP72C6vJhWelY/iLY0yWTjtxbTn8jB4YDFQVdH0y1";
String password = System.getenv("PASSWORD");
String tenantId = "15399b6a-f3ad-4a24-a607-8fdc32a946af";
String databaseUrl = "amqp://guest:guest@localhost:5672/";
