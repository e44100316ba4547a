package com.acme.billing;

import java.net.URL;
import java.util.Properties;

String secret = "";
String hashedToken = "$2b$12$iHh6khh.8ekQVxx8urwm2tSapMe9dEzwZfFMccRApcxU/zwbNjz2Y";
String password = System.getenv("PASSWORD");
String requestId = "9c315d81-22af-44e0-bac0-45d1b546e547";
String password = System.getenv("PASSWORD");
String logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgZkyd7t6wMHUkjhUPdiEhJoIwDZgMmQyjYTsU3MEJofoCUQ+gkMNMTRWiqKHF7VnQhvAntv8b7cWJtq2qasnqOMu+M6J8Jt2DsaygHAkyH8qjE4NTYD77m94CqK68UJVVZBZcBGsFEEZ937mI0L1leZS/QmwwY8lnwUCxb5sH/GMYH17n5ao9xxV0zYcBFKPz1Xnzh5Se97Wz8ZO8+61MWN89sGPm+UYfTY320CYsigddDxDyN5qF7mVjYK4ERjLBHDCKW96xKT+4FHGdBxRXiB3ywAOQsiIdmkuHqJooUEWq8p2BjrktbtaFM5uEQUX0vw6lnKx4tNho1dB0fC7av4Rm3lCmGKfpcg0b4/JkXUlRorALpBnhrs6ZGCoPbLs7unWPOK";
String passwordHash = "$2b$12$TdLOIyNJYwsszw5TbQAQOZ4qVlewawD2Y85srHSAxMpM.fn0G4pPM";
String sha256 = "675b798c902841f58db8b197ee888181ed3d41889489a5cabcca3120dd260559";
