#!/usr/bin/env bash
# Writes a minimal busybox root filesystem tarball to $1 (default: tests/.cache/busybox.tar).
# Needs Debian's busybox-static (installed when missing). Used by the end-to-end tests,
# the examples and the benchmarks; the result is cached and rebuilt only when missing.
set -euo pipefail
out=${1:-"$(dirname "$0")/.cache/busybox.tar"}
[ -s "$out" ] && { echo "$out"; exit 0; }
if [ ! -x /bin/busybox ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
fi
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,etc,proc,sys,dev,tmp,root,var/www,home/app}
cp /bin/busybox "$work/bin/busybox"
for applet in $("$work/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nwheel:x:10:app\nnogroup:x:65534:\n' > "$work/etc/group"
echo hello > "$work/var/www/index.html"
chmod 1777 "$work/tmp"
chown 1000:1000 "$work/home/app"
tar -C "$work" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
