mod containment;
mod hostile;
mod pin;
mod support;
mod working;
