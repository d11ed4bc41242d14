#!/usr/bin/env bash
# Regenerates the speech fixtures in test/fixtures/audio/: headerless 8 kHz G.711 mu-law (`.ulaw`, exactly what
# Twilio Media Streams sends) plus fixtures.json, the manifest of where speech is in each file.
#
# The generated files are committed; tests never run this script, so CI needs neither tool.
# Needs: espeak-ng and sox (Debian: apt-get install -y espeak-ng sox).
# Licensing: espeak-ng is GPL-3.0. It is only used here, on a developer machine, to synthesize test data; it is
# not a dependency of Vocelio and nothing of it is shipped. The output audio is not a derivative work of the code.
#
# Speech boundaries in the manifest come from how each file is built, not from any VAD: each utterance is
# synthesized, trimmed of espeak's own leading/trailing silence (sox `silence`, 1% amplitude), measured with
# `soxi -D`, and then placed after silence of known length. So the manifest's start/end are where the voice
# actually starts and stops, to within a few ms of the trim threshold.
#
# Usage: scripts/make-audio-fixtures.sh [out-dir]   (default: test/fixtures/audio)
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-test/fixtures/audio}"
mkdir -p "$out"
for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null || { echo "make-audio-fixtures: $tool not found (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

rate=8000
# -R: repeatable (seeded) randomness, so the noise fixture is identical on every run; -D: no dither, so the
# mu-law bytes depend only on the input.
sox_opts=(-R -D)
ulaw_fmt=(-t raw -e mu-law -b 8 -r "$rate" -c 1)

# utterance NAME VOICE TEXT -> $tmp/NAME.wav (8 kHz mono 16-bit, edge silence trimmed, peak -6 dBFS)
utterance() {
  local name="$1" voice="$2" text="$3"
  espeak-ng -v "$voice" -s 160 -w "$tmp/$name.raw.wav" "$text"
  sox "${sox_opts[@]}" "$tmp/$name.raw.wav" -r "$rate" -c 1 -b 16 "$tmp/$name.wav" \
    silence 1 0.02 1% reverse silence 1 0.02 1% reverse norm -6
}

# seconds -> integer milliseconds
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 + 0.5 }'; }
duration() { soxi -D "$1"; }

manifest_entries=()
# entry FILE DESCRIPTION SEGMENTS_JSON
entry() {
  local file="$1" description="$2" segments="$3"
  local bytes; bytes=$(stat -c %s "$out/$file")
  manifest_entries+=("$(printf '    "%s": {\n      "description": "%s",\n      "durationMs": %d,\n      "speech": %s\n    }' \
    "$file" "$description" "$(( bytes * 1000 / rate ))" "$segments")")
}
# segment START_MS END_MS TEXT -> one JSON speech segment
segment() { printf '{ "startMs": %d, "endMs": %d, "text": "%s" }' "$1" "$2" "$3"; }

# hello.ulaw: 0.6 s silence, one sentence, 0.8 s silence.
lead=0.6 tail=0.8
text="Hello, thanks for calling. How can I help you today?"
utterance hello en-us "$text"
d=$(duration "$tmp/hello.wav")
sox "${sox_opts[@]}" "$tmp/hello.wav" "${ulaw_fmt[@]}" "$out/hello.ulaw" pad "$lead" "$tail"
s=$(ms "$lead"); e=$(ms "$(awk -v a="$lead" -v b="$d" 'BEGIN { print a + b }')")
entry hello.ulaw "${lead} s silence, one sentence (en-us), ${tail} s silence" "[$(segment "$s" "$e" "$text")]"

# two-utterances.ulaw: 0.5 s silence, utterance A, 1.2 s silence, utterance B (another voice), 0.8 s silence.
lead=0.5 gap=1.2 tail=0.8
text1="I would like to book a table for two."
text2="Tomorrow evening at seven, please."
utterance first en-us "$text1"
utterance second en-us+f3 "$text2"
d1=$(duration "$tmp/first.wav")
d2=$(duration "$tmp/second.wav")
sox "${sox_opts[@]}" "$tmp/first.wav" "$tmp/first.padded.wav" pad "$lead" "$gap"
sox "${sox_opts[@]}" "$tmp/second.wav" "$tmp/second.padded.wav" pad 0 "$tail"
sox "${sox_opts[@]}" "$tmp/first.padded.wav" "$tmp/second.padded.wav" "${ulaw_fmt[@]}" "$out/two-utterances.ulaw"
s1=$(ms "$lead")
e1=$(ms "$(awk -v a="$lead" -v b="$d1" 'BEGIN { print a + b }')")
s2=$(ms "$(awk -v a="$lead" -v b="$d1" -v g="$gap" 'BEGIN { print a + b + g }')")
e2=$(ms "$(awk -v a="$lead" -v b="$d1" -v g="$gap" -v c="$d2" 'BEGIN { print a + b + g + c }')")
entry two-utterances.ulaw "${lead} s silence, sentence (en-us), ${gap} s silence, sentence (en-us+f3), ${tail} s silence" \
  "[$(segment "$s1" "$e1" "$text1"), $(segment "$s2" "$e2" "$text2")]"

# silence.ulaw: 2 s of digital silence.
sox "${sox_opts[@]}" -n "${ulaw_fmt[@]}" "$out/silence.ulaw" trim 0 2
entry silence.ulaw "2 s of digital silence (0xFF)" "[]"

# noise.ulaw: 2 s of low-level white noise (about -39 dBFS RMS, as `sox ... stats` reports), a noisy line.
sox "${sox_opts[@]}" -n "${ulaw_fmt[@]}" "$out/noise.ulaw" synth 2 whitenoise vol 0.05
entry noise.ulaw "2 s of white noise, about -39 dBFS RMS" "[]"

{
  printf '{\n'
  printf '  "format": { "encoding": "mulaw", "sampleRate": %d, "channels": 1, "container": "none" },\n' "$rate"
  printf '  "generatedBy": "scripts/make-audio-fixtures.sh (espeak-ng %s, %s)",\n' \
    "$(espeak-ng --version | awk '{ print $4 }')" "$(sox --version | sed 's/^sox: *//')"
  printf '  "files": {\n'
  for i in "${!manifest_entries[@]}"; do
    printf '%s' "${manifest_entries[$i]}"
    if (( i < ${#manifest_entries[@]} - 1 )); then printf ',\n'; else printf '\n'; fi
  done
  printf '  }\n}\n'
} > "$out/fixtures.json"

ls -l "$out"
