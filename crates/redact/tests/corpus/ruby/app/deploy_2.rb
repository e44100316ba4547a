require 'net/http'
require 'json'

secret = ENV['SECRET']

  stripe_key: 'sk_test_zvViNVBJZfM4zK9x94quw39fZMZMuJHDDt6NXqzs7Roywe3YqU4q3GQR0oArSvFix5Pp1hJOTwJm9xBztDwPp8WNFIZtS7jZrZx',

icon_data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUhevQuZQGYN7j1IPuBaX3/apk6mErnM0jqOQb9Sf/vK25yrd/fdpt05krBLAYUBpIT6ZxnHJna+3kgqKUKBj6+NjSMthu+tlLzcB7Y9qroQW6ngGhnaPM/1X8Np05K3vD1C+lPcV7/BA6V3urh5cb/7sZbtozqTQMY92Xv1Zeq463g=="

HUGGING_FACE_HUB_TOKEN = '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'

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


MAIL_API_KEY = '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'

res = Net::HTTP.get(URI('https://api.partner.example.net/v1/events?auth=AKIAQZLKE6JAG4K55VP2&limit=50'))

db_password = "dckr_pat_EXAMPLE_EXAMPLE_EXAMPLE"
