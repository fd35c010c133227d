#!/usr/bin/env bash
# Assemble an ONNX Runtime C/C++ SDK (include/ + lib/, the layout of ORT's release tarball)
# from what this machine can reach: the headers of Debian trixie's libonnxruntime-dev and the
# libonnxruntime.so.1.* that the installed onnxruntime wheel ships. The C API is versioned, so
# older headers work against the newer library.
#
#   .ci/ort_sdk.sh [DEST]        DEST defaults to $EDGEVIS_ORT_SDK, else ~/.cache/edgevis/ort-sdk
#
# trixie is reached through a private apt configuration (its own sources list, state and cache
# under DEST/.apt); the system's sources are never touched. The Release file is checked with
# Debian's own archive keyring (debian-archive-keyring carries trixie's keys).
# Elsewhere, download the official release tarball and point ONNXRUNTIME_ROOT at it instead.
set -euo pipefail

dest="${1:-${EDGEVIS_ORT_SDK:-${XDG_CACHE_HOME:-$HOME/.cache}/edgevis/ort-sdk}}"
python="${PYTHON:-python}"

# the wheel's library (the one `edgevis predict` runs)
lib="$("$python" - <<'EOF'
import glob, os, onnxruntime
libs = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.1.*")))
print(libs[-1] if libs else "")
EOF
)"
if [ -z "$lib" ]; then
  echo "error: the installed onnxruntime wheel has no libonnxruntime.so.1.*" >&2
  exit 1
fi

if [ ! -f "$dest/include/onnxruntime_cxx_api.h" ]; then
  apt_dir="$dest/.apt"
  mkdir -p "$apt_dir/etc/preferences.d" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ ! -f "$keyring" ]; then
    echo "error: $keyring is missing (apt-get install debian-archive-keyring)" >&2
    exit 1
  fi
  echo "deb [signed-by=$keyring] http://deb.debian.org/debian trixie main" > "$apt_dir/etc/sources.list"
  : > "$apt_dir/state/status"
  apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::status=$apt_dir/state/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Get::List-Cleanup=0"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_opts[@]}" -q update >/dev/null
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -q download libonnxruntime-dev >/dev/null)
  deb="$(ls "$apt_dir"/debs/libonnxruntime-dev_*.deb | head -n1)"
  rm -rf "$apt_dir/root" && mkdir -p "$apt_dir/root"
  dpkg -x "$deb" "$apt_dir/root"
  hdr="$(dirname "$(find "$apt_dir/root" -name onnxruntime_cxx_api.h | head -n1)")"
  if [ ! -f "$hdr/onnxruntime_cxx_api.h" ]; then
    echo "error: $deb carries no onnxruntime_cxx_api.h" >&2
    exit 1
  fi
  rm -rf "$dest/include.tmp" && mkdir -p "$dest/include.tmp"
  cp "$hdr"/*.h "$dest/include.tmp/"
  basename "$deb" > "$dest/include.tmp/DEBIAN_PACKAGE"
  rm -rf "$dest/include" && mv "$dest/include.tmp" "$dest/include"
  rm -rf "$apt_dir/root" "$apt_dir/cache"
fi

mkdir -p "$dest/lib"
ln -sfn "$lib" "$dest/lib/libonnxruntime.so.1"
ln -sfn libonnxruntime.so.1 "$dest/lib/libonnxruntime.so"
echo "$dest"
