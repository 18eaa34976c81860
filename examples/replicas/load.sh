#!/bin/sh
# The load client of examples/replicas: asks $TARGET:$PORT for its page (one connection per
# request, the name resolved each time) as fast as it can and, once a second, prints one line:
#   12:00:01 ok=41 failed=0 replicas=3 replicas-api-1=14 replicas-api-2=14 replicas-api-3=13
target=${TARGET:-api}
port=${PORT:-8080}
hits=/tmp/hits
while :; do
  sec=$(date +%s)
  : > "$hits"
  ok=0
  failed=0
  while [ "$(date +%s)" = "$sec" ]; do
    body=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 "$target" "$port" 2>/dev/null | tail -n 1)
    case $body in
      "replica "*)
        echo "${body#replica }" >> "$hits"
        ok=$((ok + 1))
        ;;
      *) failed=$((failed + 1)) ;;
    esac
  done
  spread=$(sort "$hits" | uniq -c | awk '{ printf " %s=%s", $2, $1 }')
  echo "$(date +%T) ok=$ok failed=$failed replicas=$(sort -u "$hits" | wc -l)$spread"
done
