require 'net/http'
require 'json'

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQAhWdvZVSCibuxCFlGqGA2/FEqkLGyWHCGtzf1yGL5SE/TyG6f3snyeBcnDgWxd+oDVh8Vx/OrEHyotgMzxLswx/ibPErfZ2uACfY6dqJaRLjSwVfiAf1xyzO0MHWkt9F7YyOwZAQi+y1xybAzj7JaMBBf4UKfprXfGzoW02LGo8DIQ5oOzaioreb5xqVd6daq6obi1wL+e369RiK+dxdKMdcAQkwujsTn4dOrmSpvLG3O0gIYTvz4SG+ACQAF9E030XkZ4jgVHKu5ba3C2pPOGwcxFUc+wFRwK1+6T+67GDjCpf8S0fcSxZ8qGu0W2oH4dE+OJqioHI1GTAQ8lNc deploy@ci"

tenant_id = "2172188e-cf9a-4c8b-af03-6c77b12935af"

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


# old storage connection string: DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=q7X8AZdgkBHybMxDpYykYVXiJdZtdhwNfVdMK/fhYQHtKZJFOjSjWXuTR+WwKBfb/1rc6CMEo/iA6btY3br4fA==;EndpointSuffix=core.windows.net

placeholder_img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUnnGO6HlgCqq+8vUEF6zNnYBEQczxYmRJbCzImkpwzAOnR/tRRcr7wzOrRwq7sOUiZwjlHjwU9//8OvtYZDF89xopWiM15FvK4kVihxeBv31Om/bkRtpIkm19HBQ/KuKoUcTvOdT7sDdCq0yhMQgxpDhmkiRRQe3v45CEie43C37JUOCyKDaoS+fszJL8qqP0+dMQigV+Wbiy6v70XREBIF13155j/JouanofdxJ"

config.huggingface_token = "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"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end
