#!/usr/bin/env bash
# The embedded budget of a PSK-only DTLS 1.2 client, in one command:
#   bash core/embedded-budget/run.sh
# Code size: `psk_client` minus `baseline` (the same runtime without m2msec), both `#![no_std]`,
# opt-level z (profile `release`) and s (profile `size-s`), fat LTO, one codegen unit,
# panic=abort, for thumbv7em-none-eabihf (Cortex-M4F) when that target can be installed, else
# for the host (said in the output). Three variants: the core without default features (PSK
# only), with `full` (ecdhe + gba), and `enrolee`: `enrolee_client` minus `baseline`, a PSK-only
# Enrolee + MAF client on the core with `binding` and without `ecdhe`. Then type sizes on that
# target and the RAM probe on the host. CARGO_TARGET_DIR defaults to ./target next to this
# script.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_INCREMENTAL=0

target=thumbv7em-none-eabihf
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  rustup target add "$target" >/dev/null 2>&1 || target=x86_64-unknown-linux-gnu
fi
echo "target: $target"
[ "$target" = thumbv7em-none-eabihf ] || echo "(fallback: $target; memcpy/memcmp come from the shared libc and are not counted)"

# Bytes of one allocated section (all sections whose name starts with it, e.g. .rodata.*).
section() { size -A "$1" | awk -v s="$2" '$1 == s || index($1, s ".") == 1 { n += $2 } END { print n + 0 }'; }

printf '\n%-9s %-8s %9s %9s %7s %7s %10s\n' variant opt .text .rodata .data .bss flash
for variant in psk full enrolee; do
  features=()
  bin=psk_client
  [ "$variant" = full ] && features=(--features full)
  [ "$variant" = enrolee ] && features=(--features binding) && bin=enrolee_client
  for profile in release size-s; do
    cargo build -q --profile "$profile" --target "$target" "${features[@]}" --bin baseline --bin "$bin"
    dir="$CARGO_TARGET_DIR/$target/$profile"
    row=()
    for s in .text .rodata .data .bss; do
      row+=($(($(section "$dir/$bin" "$s") - $(section "$dir/baseline" "$s"))))
    done
    opt=z
    [ "$profile" = size-s ] && opt=s
    printf '%-9s %-8s %9d %9d %7d %7d %10d\n' "$variant" "$opt" "${row[@]}" $((row[0] + row[1] + row[2]))
  done
done
echo "(m2msec's share: psk_client (enrolee: enrolee_client) minus baseline; flash = .text + .rodata + .data)"

echo
for variant in psk full; do
  features=()
  [ "$variant" = full ] && features=(--features full)
  cargo build -q --release --target "$target" "${features[@]}" --bin layout
  nm -S "$CARGO_TARGET_DIR/$target/release/layout" | while read -r _ size _ name; do
    case "$name" in SIZE_OF_*) echo "$variant on $target: ${name#SIZE_OF_} = $((16#$size)) bytes" ;; esac
  done
done

echo
echo "RAM probe (host, PSK only):"
cargo run -q --release --features ram --bin ram
echo "RAM probe (host, full):"
cargo run -q --release --features ram,full --bin ram
