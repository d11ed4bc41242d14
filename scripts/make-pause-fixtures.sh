#!/usr/bin/env bash
# Regenerates the end-of-turn fixtures in test/fixtures/audio/pauses/: utterances with pauses of 300-800 ms
# inside the sentence ("I'd like to book a table for, um, ... four people.") and complete ones, as headerless
# 8 kHz G.711 mu-law (what Twilio sends), plus pauses.json: where each spoken piece starts and ends and what an
# STT would transcribe for it (punctuated, as Deepgram's smart_format does).
#
# The generated files are committed; tests never run this script, so CI needs neither tool.
# Needs: espeak-ng and sox (Debian: apt-get install -y espeak-ng sox). See make-audio-fixtures.sh for licensing
# (espeak-ng is only used here to make test data) and for how boundaries are measured (trimmed, then placed
# after silence of known length, so they do not come from any VAD).
#
# Usage: scripts/make-pause-fixtures.sh [out-dir]   (default: test/fixtures/audio/pauses)
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-test/fixtures/audio/pauses}"
mkdir -p "$out"
for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null || { echo "make-pause-fixtures: $tool not found (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

rate=8000
sox_opts=(-R -D)
ulaw_fmt=(-t raw -e mu-law -b 8 -r "$rate" -c 1)
lead=0.5
tail=1.5

ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 + 0.5 }'; }

# piece NAME VOICE TEXT -> $tmp/NAME.wav (8 kHz mono 16-bit, edge silence trimmed, peak -6 dBFS)
piece() {
  espeak-ng -v "$2" -s 165 -w "$tmp/$1.raw.wav" "$3"
  sox "${sox_opts[@]}" "$tmp/$1.raw.wav" -r "$rate" -c 1 -b 16 "$tmp/$1.wav" \
    silence 1 0.02 1% reverse silence 1 0.02 1% reverse norm -6
}

entries=()
# fixture NAME VOICE TEXT [PAUSE_MS TEXT]... : the pieces of one caller turn, separated by the given pauses.
fixture() {
  local name="$1" voice="$2"
  shift 2
  local parts=() segments=() t i=0 at
  at=$(ms "$lead")
  sox "${sox_opts[@]}" -n -r "$rate" -c 1 -b 16 "$tmp/lead.wav" trim 0 "$lead"
  parts+=("$tmp/lead.wav")
  while (( $# > 0 )); do
    local text="$1"
    shift
    piece "$name.$i" "$voice" "$text"
    local d; d=$(ms "$(soxi -D "$tmp/$name.$i.wav")")
    parts+=("$tmp/$name.$i.wav")
    segments+=("$(printf '{ "startMs": %d, "endMs": %d, "text": "%s" }' "$at" "$((at + d))" "$text")")
    at=$((at + d))
    if (( $# > 0 )); then
      local pause="$1"
      shift
      sox "${sox_opts[@]}" -n -r "$rate" -c 1 -b 16 "$tmp/$name.gap$i.wav" trim 0 "$(awk -v p="$pause" 'BEGIN { print p / 1000 }')"
      parts+=("$tmp/$name.gap$i.wav")
      at=$((at + pause))
    fi
    i=$((i + 1))
  done
  sox "${sox_opts[@]}" -n -r "$rate" -c 1 -b 16 "$tmp/tail.wav" trim 0 "$tail"
  parts+=("$tmp/tail.wav")
  sox "${sox_opts[@]}" "${parts[@]}" "${ulaw_fmt[@]}" "$out/$name.ulaw"
  local joined; joined=$(printf '%s, ' "${segments[@]}")
  entries+=("$(printf '    "%s.ulaw": { "voice": "%s", "speech": [%s] }' "$name" "$voice" "${joined%, }")")
}

# Pauses the caller goes on after: after a filler, a conjunction, a preposition, an unfinished clause.
fixture table-for-um en-us "I'd like to book a table for, um," 600 "four people."
fixture account-number-is en-us "My account number is" 500 "four five six seven."
fixture booking-and en-us+f3 "I want to change my booking and" 700 "add one more guest."
fixture check-if en-us "Can you check if" 400 "the order has shipped?"
fixture so-uh en-us+f3 "So, uh," 800 "what are your opening hours?"
fixture because en-us "I am calling because" 550 "my card was declined."
fixture room-with en-us+m3 "We need a room for two nights, with" 300 "a view of the sea."
fixture pizza-two-pauses en-us "I'd like, um," 450 "a large pizza with" 750 "mushrooms."
# Complete turns: answered after the short wait.
fixture open-tomorrow en-us "What time do you open tomorrow?"
fixture table-for-two en-us+f3 "I would like to book a table for two."
fixture billing en-us+m3 "Can I speak to someone in billing?"
fixture my-name en-us "My name is John Smith."
fixture no-thanks en-us+f3 "No, thank you."
fixture thats-right en-us "Yes, that's right."

{
  printf '{\n'
  printf '  "format": { "encoding": "mulaw", "sampleRate": %d, "channels": 1, "container": "none" },\n' "$rate"
  printf '  "generatedBy": "scripts/make-pause-fixtures.sh (espeak-ng %s, %s)",\n' \
    "$(espeak-ng --version | awk '{ print $4 }')" "$(sox --version | sed 's/^sox: *//')"
  printf '  "leadMs": %d, "tailMs": %d,\n' "$(ms "$lead")" "$(ms "$tail")"
  printf '  "files": {\n'
  for i in "${!entries[@]}"; do
    printf '%s' "${entries[$i]}"
    if (( i < ${#entries[@]} - 1 )); then printf ',\n'; else printf '\n'; fi
  done
  printf '  }\n}\n'
} > "$out/pauses.json"

ls -l "$out"
