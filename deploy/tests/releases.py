"""Synthetic OpenShift release images pushed to a registry over the Docker Registry v2
API with the standard library only: one layer holding
`release-manifests/release-metadata`, a config naming the architecture,
a Docker schema 2 manifest."""

import gzip
import hashlib
import io
import json
import tarfile
import urllib.parse
import urllib.request


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def release_layer(version: str, previous: list) -> tuple:
    """(gzipped layer, diff_id) of a layer with the release-metadata file."""
    metadata = json.dumps({"kind": "cincinnati-metadata-v0", "version": version, "previous": previous, "next": [], "metadata": {}}).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("release-manifests/release-metadata")
        info.size = len(metadata)
        tar.addfile(info, io.BytesIO(metadata))
    return gzip.compress(raw.getvalue(), mtime=0), digest(raw.getvalue())


def push_blob(base: str, repository: str, blob: bytes) -> str:
    d = digest(blob)
    start = urllib.request.Request(f"{base}/v2/{repository}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(start, timeout=10) as r:
        location = urllib.parse.urljoin(base, r.headers["Location"])
    separator = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{separator}digest={d}", method="PUT", data=blob, headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(put, timeout=10) as r:
        assert r.status == 201, (repository, d, r.status)
    return d


def push_release(base: str, repository: str, tag: str, version: str, previous: list, arch: str = "amd64") -> str:
    """Pushes one release image and returns its manifest digest."""
    layer, diff_id = release_layer(version, previous)
    config = json.dumps({"architecture": arch, "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": push_blob(base, repository, config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": push_blob(base, repository, layer)}],
    }).encode()
    put = urllib.request.Request(f"{base}/v2/{repository}/manifests/{tag}", method="PUT", data=manifest, headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(put, timeout=10) as r:
        assert r.status == 201, (repository, tag, r.status)
    return digest(manifest)
