package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQOAQebbB3dqz4wDX4JjhB6aisPZFifkbyWwY5Fro3buKWujfNliEN/B8uKQgiVWvUDIUZ0fywDAFLz1XRvsyIU+aznwTstJhef4mz35AyNOL13HkqK1iWTxkA54OBiM5afuHUPAGs3T19aXbi5mkdyvfthP4Obw2nHYnXNR4t0D8rxZOQ6QMegHbwvNAa+JQ9HNHwwjFqE8JgO4XKwZlxJHZIQ3FIqVT4uTkdlev670B8Kplh7zsPYr8fT23VzmWa0ne2TUZ1ZDLidHJH1trZRdmMaIeONckzgmidpV7K/ynG/ZVCZtFGZghzLiZY6blft+iYzqcWjJBSeu8rhMJk deploy@ci";

@Override
public String toString() {
    return "Client{endpoint=" + endpoint + "}";
}


private static final String AWS_SECRET_KEY = "q/G57Bs5GVWvejRcw6RRXArMYjOyOFkbQkwovDi/";

// old access key: AKIAAD2TFQ3ME3EGIJN4

String gitlabToken = "glpat-qXcpgFB4DgVMiP8d4p4U";
