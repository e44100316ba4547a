use std::collections::HashMap;
use std::time::Duration;

let logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUpgW7JD4CIKPSjrST/Ujdn+EwWuphP/vk9uuMlDcs9bSxLPfSlwS4PpyKxHK5t+nY3g+jhc4OUS22b2a7kOpk+Sc81cogsokVT3Af8WyLEfG9J9Sq4Oe7Pfz10WcBOxMDRNbhhjnjZXU3JlpdSPrBYbzVMMj8ucW6JaQ3WrO4VH/Y8VHsOnMEzXJgI94WQ2LQ9/SrKoyzUPIxXwjI7FYa6htfdo4OWoIFt5JLw==";
let stylesheet = "/static/vendor.83b3570cedbc44b0.js";
let client_secret = vault.read('secret/app');
let secret = "";
let bundle_path = "/static/app.7c6709cae7cc9c55.woff2";
let logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUolWuS/ip36M2ZJnVTPmbYVPFhcpwhxOUadABTeonVwHoMXacOYUux7TK1WJBaECoivYWCLKowJN5Gs5o4/2GuiknUOAGaXQ5T/MIVDz01uVyTWvR+ZO/49kXOj/nBoOvwj6ukL7";
let hashed_token = "$2b$12$1sAAeS8vT57zoQPraC5TpNRjInvVfcgVp9bLClaQmOB9twWXZJ3ud";
let authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ4HG0Qy18L0GmR/npmlH1Xvx44t0DB4MylwUrfELpI8xZIJn7DCoOpNcTWNKg7N46MyB4Wmhq+i1W66SoQSwFnUKs9HbVgYk1UUA09saOpLDZAPDeq2JlJWDPI8n70/Ci5go80DxotO5gX1yQWMh9voWXGcNXjCIUMi/P5vvhQJp2weEjObsc1VvW4tP7UgbWMA8Gn9bjIkQeimwDRDnjdU5Jhev0996HPZGlr8h31EKkIaomc7jadhk6UkWf6x6t76Lq8aH+y5L3dORmn3FKVOUoOgg8biPYuBNyAdlIdSppQxIDK39VFVBhBoA2c+NevHs6LQOHZB9xJCsxcmGv deploy@ci";
