#!/bin/sh
# image.sh builds pdp's OCI image without a container daemon: the static
# binaries (the same go build as the Dockerfile), assembled with umoci into
# an OCI image layout, one layer from scratch, distroless-equivalent:
#
#   /pdp, /pdpctl                         the binaries; the entrypoint is /pdp
#   /etc/passwd, /etc/group               root and nonroot (65532), the user it runs as
#   /etc/ssl/certs/ca-certificates.crt    the build host's CA bundle (rediss://, JWKS)
#   /examples/metalcloud.yaml             the example state file
#   /tmp (1777), /home/nonroot
#
# Usage: internal/image/image.sh OUT_DIR VERSION
# Writes the layout OUT_DIR/oci (tag VERSION) and OUT_DIR/pdp-image.tar, the
# layout as one archive (skopeo copy oci-archive:..., podman load, docker load).
set -eu
out=$1
version=$2
source_url=${IMAGE_SOURCE:-https://github.com/metalsoft-io/pdp}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
certs=/etc/ssl/certs/ca-certificates.crt

for tool in umoci go; do
	command -v $tool >/dev/null 2>&1 || { echo "image.sh: $tool not found (make test-deps installs umoci)" >&2; exit 1; }
done
[ -r $certs ] || { echo "image.sh: $certs missing: apt-get install ca-certificates" >&2; exit 1; }

rm -rf "$out/oci" "$out/rootfs" "$out/pdp-image.tar"
root=$out/rootfs
mkdir -p "$root/etc/ssl/certs" "$root/examples" "$root/tmp" "$root/home/nonroot"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$root/" ./cmd/pdp ./cmd/pdpctl
cp $certs "$root/etc/ssl/certs/ca-certificates.crt"
cp examples/metalcloud.yaml "$root/examples/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/ssl/certs/ca-certificates.crt" "$root/examples/metalcloud.yaml"
chmod 0755 "$root/pdp" "$root/pdpctl"

image=$out/oci:$version
umoci init --layout "$out/oci"
umoci new --image "$image"
# Every file root-owned but the nonroot user's home, as in distroless (a
# build as another user maps its files to root with --rootless).
rootless=
if [ "$(id -u)" = 0 ]; then chown 65532:65532 "$root/home/nonroot"; else rootless=--rootless; fi
umoci insert $rootless --image "$image" --history.created_by "internal/image/image.sh" "$root" /
umoci config --image "$image" \
	--config.user 65532:65532 \
	--config.entrypoint /pdp \
	--config.workingdir / \
	--config.env PATH=/ \
	--config.env PDP_ADDR=:8181 --config.env PDP_ADMIN_ADDR=:9181 \
	--config.exposedports 8181/tcp --config.exposedports 9181/tcp \
	--created "$created" --author "MetalSoft" --os linux --architecture "$(go env GOARCH)" \
	--config.label org.opencontainers.image.title=pdp \
	--config.label org.opencontainers.image.source="$source_url" \
	--config.label org.opencontainers.image.revision="$revision" \
	--config.label org.opencontainers.image.version="$version" \
	--config.label org.opencontainers.image.created="$created" \
	--config.label org.opencontainers.image.licenses=Apache-2.0 \
	--manifest.annotation org.opencontainers.image.source="$source_url" \
	--manifest.annotation org.opencontainers.image.revision="$revision" \
	--manifest.annotation org.opencontainers.image.version="$version" \
	--manifest.annotation org.opencontainers.image.created="$created" \
	--manifest.annotation org.opencontainers.image.licenses=Apache-2.0
umoci gc --layout "$out/oci"
rm -rf "$root"
tar -C "$out/oci" -cf "$out/pdp-image.tar" .
echo "image: $out/oci:$version ($out/pdp-image.tar)"
