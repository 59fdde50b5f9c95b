#!/usr/bin/env bash
# Fetches the pretrained models Fovea can import from their pinned npm packages, checks each
# package's sha256 and each model file's sha256 prefix, and extracts the model files into a cache
# folder: $FOVEA_PRETRAINED_DIR, or the first argument, or ~/.cache/fovea/pretrained.
#
#   tools/pretrained/fetch.sh [DIR]
#
# Needs `npm` (only `npm pack`, which downloads a package's tarball without running anything
# from it) and `sha256sum`. Nothing in Fovea fetches at run time; tests that need a cached file
# print a note and skip when it is absent.
set -euo pipefail

dest="${1:-${FOVEA_PRETRAINED_DIR:-$HOME/.cache/fovea/pretrained}}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# sha256 of each package tarball as `npm pack` fetched it on 2026-12-01
declare -A package_sha=(
  ["@mediapipe/face_detection@0.4.1657300184"]="a118cde74923dc4435257fbfbb613464a0f58d115dff6314d4ff96c8aebf6419"
  ["@mediapipe/selfie_segmentation@0.1.1675465747"]="7767b33eaa68990ee06c28bbb89f39a13a47ebb07ff0f1fd4947d9e817bb9bf9"
  ["@vladmandic/face-api@1.7.15"]="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
)

# package@version | file inside the package | sha256 prefix of that file (PLATFORM.md for the
# models; the face-api manifests, runtime bundle and licence as fetched on 2026-12-01). Each file
# lands in DIR under its base name. face-api's `dist/face-api.esm.js` (the package's bundled tfjs)
# is only for tools/pretrained/make_tfjs_fixtures.mjs, which runs the package's own forward pass.
models=(
  "@mediapipe/face_detection@0.4.1657300184|face_detection_short_range.tflite|3bc182eb9f33925d"
  "@mediapipe/face_detection@0.4.1657300184|face_detection_full_range.tflite|99bf9494d84f50ac"
  "@mediapipe/selfie_segmentation@0.1.1675465747|selfie_segmentation.tflite|8d13b7fae74af625"
  "@vladmandic/face-api@1.7.15|model/face_recognition_model-weights_manifest.json|cbaffa501b0b9275"
  "@vladmandic/face-api@1.7.15|model/face_recognition_model.bin|b413e420d6840b27"
  "@vladmandic/face-api@1.7.15|model/ssd_mobilenetv1_model-weights_manifest.json|888f744dffbc84f5"
  "@vladmandic/face-api@1.7.15|model/ssd_mobilenetv1_model.bin|2835640602d53718"
  "@vladmandic/face-api@1.7.15|dist/face-api.esm.js|14f0e9813f6d9f14"
  "@vladmandic/face-api@1.7.15|LICENSE|9a3442b79acaf4fb"
)

for entry in "${models[@]}"; do
  IFS='|' read -r pkg file want <<<"$entry"
  base="$(basename "$file")"
  if [[ "$base" == LICENSE ]]; then
    base="face-api.LICENSE"
  fi
  if [[ -f "$dest/$base" ]] && sha256sum "$dest/$base" | grep -q "^$want"; then
    echo "ok (cached): $dest/$base"
    continue
  fi
  slug="$(echo "$pkg" | tr '@/' '__')"
  mkdir -p "$work/$slug"
  if ! ls "$work/$slug"/*.tgz >/dev/null 2>&1; then
    (cd "$work/$slug" && npm pack --silent "$pkg" >/dev/null)
  fi
  tgz="$(ls "$work/$slug"/*.tgz)"
  tgz_sha="$(sha256sum "$tgz" | cut -d' ' -f1)"
  if [[ "$tgz_sha" != "${package_sha[$pkg]}" ]]; then
    echo "error: $pkg: the package tarball has sha256 $tgz_sha, expected ${package_sha[$pkg]}" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$work/$slug" "package/$file"
  got="$(sha256sum "$work/$slug/package/$file" | cut -d' ' -f1)"
  if [[ "$got" != "$want"* ]]; then
    echo "error: $pkg: $file has sha256 $got, expected a hash starting $want" >&2
    exit 1
  fi
  cp "$work/$slug/package/$file" "$dest/$base.tmp"
  mv "$dest/$base.tmp" "$dest/$base"
  echo "ok: $dest/$base ($pkg, sha256 $got)"
done
