package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQFkWVg7+7WmsA6mO1NwHpxnLbXFcE0FShgJl+ab0ErjdtxrJ/rvc9AqTjNzUAjlJX3XQoQ+ALnp18EClRa5sK4eNO34ftc0fXlIZ4WdG+gJYHhCHb3zM950aSfFvNVTBm9RXt6PiALLJv9HBy42+CMTkhFP/SQICBeI9czxz3ZfrommxMiOLT5vPSyXXo3VFqqBbQ4S1xYaDf5N/BCMIWc0nD76LC9uBA2n0vaJlULu+dvCZHwN7xu7j3vXwKMUqeIHL9B2z3VxEByfpOa2cnzRVWM8Hy67/gW5J3+/H/thnAa+7pYNVFbEg9kOA62/pN6Vt1thzETwol8zfSX/pn deploy@ci";
String dbPassword = System.getenv("DB_PASSWORD");
String hashedToken = "$2b$12$Cp03rvT.iH9q.0IS3Ibs7fBvGV8WF5hDKVNR2cgFixuwgjx/wOKjg";
String databaseUrl = "postgres://postgres:postgres@localhost:5432/test";
String hashedToken = "$2b$12$QTzh0r9//8ahdDbPqmudN1v1QIUyElqW1Kf5b4CppMzXCUHTePX3O";
// see https://jwt.io for <header>.<payload>.<signature>
String hashedToken = "$2b$12$Ok7S04UrQuytXoqhOp0pa/eT7kLWkk5xUHG9mj1tVt29I7A8hbBEe";
String apiKey = System.getenv("API_KEY");
