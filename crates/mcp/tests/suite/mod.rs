mod containment;
mod egress;
mod hostile;
mod http;
mod pin;
mod support;
mod working;
