# Podman on this machine kind, for scripts/test-deploy and scripts/test-image
# (sourced; ../docs/deploy.md): the tools (apt), podman's settings, a build helper
# that never pulls, and a Debian base image made locally where no registry is
# reachable. Callers set `work` (a folder for logs and settings) and define `say` and `fail`.

# Install podman and friends where missing; export CONTAINERS_CONF; define `build`.
podman_ready() {
  local missing=() c
  for c in podman buildah runc debootstrap; do command -v "$c" >/dev/null || missing+=("$c"); done
  # Podman's CNI network resolves container names (compose's `redis`) only with the
  # dnsname plugin, a Recommends of podman that --no-install-recommends leaves out.
  [[ -e /usr/lib/cni/dnsname ]] || missing+=(dnsname)
  if ((${#missing[@]})); then
    say "installing podman and friends (apt)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman buildah runc fuse-overlayfs slirp4netns uidmap debootstrap \
      golang-github-containernetworking-plugin-dnsname) >/dev/null || fail "apt-get install podman"
  fi
  if [[ ! -f "$work/containers.conf" ]]; then
    cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  fi
  export CONTAINERS_CONF="$work/containers.conf"
  # A TLS-inspecting proxy's CA, for HTTPS inside image builds.
  build_ca=()
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && build_ca=(--volume /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro)
}

build() { podman build --pull=never --format docker "${build_ca[@]}" "$@"; }

# The Dockerfile's base image, debootstrapped from this machine's Debian mirror
# when it is not there (~40 s, once).
debian_base() {
  local base=docker.io/library/debian:bookworm-slim mirror
  if podman image exists "$base"; then
    echo "    present"
    return
  fi
  mirror="$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" \
    || fail "debootstrap (see $work/debootstrap.log)"
  tar -C "$work/rootfs" -c . | podman import - localhost/debian:bookworm >/dev/null
  podman tag localhost/debian:bookworm "$base"
  rm -rf "$work/rootfs"
}
