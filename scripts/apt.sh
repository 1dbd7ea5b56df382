# Sourced by the ensure-* scripts: install a Debian package when running as root.
# apt_install PACKAGE: installs it (refreshing the package index once if the first try fails);
# returns non-zero when not root, without apt-get, or when the install fails.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "Installing $1 with apt-get…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1; }
}
