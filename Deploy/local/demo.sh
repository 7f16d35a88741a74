#!/usr/bin/env bash
# Sends a few sample requests through the local cluster's load balancer (models, a chat, the same
# chat streamed, a completion), showing which gateway, route and engine answered, then says how to
# point an OpenAI client at the cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
url=$lb_url

show() {  # show TITLE curl-args...: the answer and the routing headers
  local title=$1; shift
  echo "--- $title"
  curl -sS $(curl_tls) -D "$dir/demo-headers" "$@" | head -c 3000; echo
  grep -i '^x-junction' "$dir/demo-headers" | tr -d '\r' | sed 's/^/    /' || true
}
show "GET /v1/models" "$url/v1/models"
chat='{"model":"tiny","messages":[{"role":"system","content":"You are a terse assistant."},{"role":"user","content":"Name three rivers."}],"max_tokens":12}'
show "POST /v1/chat/completions" -H 'Content-Type: application/json' -d "$chat" "$url/v1/chat/completions"
show "POST /v1/chat/completions, streaming (SSE, chunk by chunk)" -N -H 'Content-Type: application/json' \
  -d "${chat/\"max_tokens\":12/\"max_tokens\":4,\"stream\":true}" "$url/v1/chat/completions"
show "POST /v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"tiny","prompt":"Once upon a time","max_tokens":8}' "$url/v1/completions"

cat <<TEXT

The cluster is up. Point any OpenAI client at it:

    export OPENAI_BASE_URL=$url/v1 OPENAI_API_KEY=unused   # the local cluster sets no API keys$([ "$tls" = 1 ] && printf '\n    export SSL_CERT_FILE=%s   # TLS: the local CA (httpx reads it)' "$ca_file")

    from openai import OpenAI
    client = OpenAI()
    print(client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)

    Deploy/local/status.sh          leader, members, instances, gateways' routing mode
    Deploy/chaos/kill-leader.sh     a fault under load, with a report (see Deploy/chaos/)
    Deploy/local/down.sh            stop everything (logs stay in $dir/logs)
TEXT
