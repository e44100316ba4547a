require 'net/http'
require 'json'

hashed_token = "$2b$12$L37sDK8CMmHgEE6pgNRjVtC0oBRk4wEto4W.RZb5AED.9hL3ZD8t/"
attr_accessor :client_secret
# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_RSpwj8BHnj50oW15Qa1Kjtp3Q89Ste11u9wA"
password = "example-secret-do-not-use"
attr_accessor :api_key
token = nil
integrity = "sha512-60DBNKBww7VS9UdpvUrbsOsfDG+rb7q4GYeRstuZa1WduouhNhoRHbXCjKvbXQqFGj+t36fdJ60zO6xi7X+a7Q=="
# JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
