# Shared by deploy/run.sh and deploy/test.sh: the set-up both need on a fresh Debian machine.
# Source it; it defines functions only.

say() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

require_cargo() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is missing; install Rust with rustup (https://rustup.rs) and run this again" >&2
    exit 1
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The C and C++ tool chain that rdkafka's bundled librdkafka build needs.
ensure_build_tools() {
  say "build tools for rdkafka (cmake, a C++ compiler, libcurl, libssl, zlib, pkg-config)"
  local missing=() tool pkg
  for tool in cmake:cmake pkg-config:pkg-config make:make g++:g++; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
  done
  for pkg in libcurl4-openssl-dev libssl-dev zlib1g-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt_install "${missing[@]}"
  else
    echo "present"
  fi
}
