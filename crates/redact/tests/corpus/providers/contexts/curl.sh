curl -u x-access-token:s4gzGeu8uW3hoCQlcBCcL https://api.acme.net/v1/items
curl -sS --user x-access-token:RZwQt8KIU4KHct8f5rAglvX -X POST https://ci.acme.net/job/build
  curl --user=deploy:h0REcrQPtRYsYL6oM1 https://nexus.acme.net/repository/raw/
curl -fsSL -u 'ci-bot:qtWdjSCbEIEgtWryE3obD0ajMByE' https://artifacts.acme.net/x.tgz
curl -u user:password https://example.com
curl -u $USER:$TOKEN https://x
curl -u admin: https://x
curl --user "${CREDS}" https://x
