curl -u alice:Mqj4I8KHj9XNjtWdE42U8HC8CQ https://api.acme.net/v1/items
curl -sS --user alice:mP0T6NnG2vqD4Ie -X POST https://ci.acme.net/job/build
  curl --user=x-access-token:QP5zJ4JjtfqiloN8m9syyNKOe9 https://nexus.acme.net/repository/raw/
curl -fsSL -u 'ci-bot:NisxZfnetRMDK4e459CMpcEpNhzg' https://artifacts.acme.net/x.tgz
curl -u user:password https://example.com
curl -u $USER:$TOKEN https://x
curl -u admin: https://x
curl --user "${CREDS}" https://x
