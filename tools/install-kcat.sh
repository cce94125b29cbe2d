#!/bin/sh
# Installs Debian's kcat when it is missing and writes .venv/bin/kcat, a wrapper that runs it
# with the librdkafka bundled in confluent-kafka's wheel.
#
# Why: Debian 12 (bookworm) ships kcat 1.7.1 linked to librdkafka 2.0.2, which misreads
# the tagged fields of the embedded broker's ApiVersions reply ("Read underflow ... at
# 274/279") and never connects. librdkafka 2.16 reads it. On a newer Debian the wrapper is
# harmless.
set -eu
venv=${1:-.venv}
if ! command -v kcat >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian's kcat package" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >/dev/null
fi
kcat=$(command -v kcat)
lib=$("$venv/bin/python" - <<'PY'
import pathlib, confluent_kafka
libs = pathlib.Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
print(next(libs.glob("librdkafka*.so*")))
PY
)
mkdir -p "$venv/rdkafka"
ln -sf "$lib" "$venv/rdkafka/librdkafka.so.1"
rdkafka_dir=$(cd "$venv/rdkafka" && pwd)
cat > "$venv/bin/kcat" <<SH
#!/bin/sh
# Written by tools/install-kcat.sh: Debian's kcat with a librdkafka that can talk to the embedded broker.
LD_LIBRARY_PATH="$rdkafka_dir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$kcat" "\$@"
SH
chmod +x "$venv/bin/kcat"
"$venv/bin/kcat" -V | grep -o 'librdkafka [0-9.]*' >&2
