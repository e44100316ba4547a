package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

clientSecret := ""
authToken := "password"
tenantId := "662d0a5a-aed1-4bcf-b553-3ec8106b7d6c"
passwordHash := "$2b$12$7dn4Q0vXSeyUbHpdi2sBO0OvZQByQbF8.llOywsSNA7IL256TUFjX"
authToken := os.Getenv("AUTH_TOKEN")
	AuthToken string `json:"auth_token"`
authorizedKey := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ+7lCm586stL6DdcazHPOUpuCIH1L79XzkR5TLfYQfVCQcfM1enmkFpl11CcnR8r71B0m5CQ67HqBGYd/GrK1arJHFwyKy9EZNV8NpW28hJMf5cVZkk8p7XxtgBrLoTVpa18T/CaFDPWCTZh1ernUcbPDgcBOearuXGjFiM1FBUuPlbZq1/0i98VS5I8GO4U3BJ8AsYKGbhw5qt98EcI82we/Ie8FDdYrzzbjopkMDxT9JXyKzbKSLWiTji6dXScX9MMpUrABPtgC+0bxT+pXvKQ0TK2iB7JVg9/QyxMZX2+Wc/dgnXwwnDuCQI7SQCYtPg01JypTlyahMijFgxnp deploy@ci"
