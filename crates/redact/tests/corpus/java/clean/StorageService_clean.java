package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String digest = "6b9d6abb7781a19c7f52b763895b1e34fe5ac363f28cd0cfbb19d1eec5219a59";
private String accessKey;
String accessKey = "example-secret-do-not-use";
String contentHash = "52af35be6bd650fe0c0180e2dbd38ca3ec2623932eb8a9372439a90f95bd47d4";
