"""Write the small test set in tests/data/speech/ (≤ 1 MB): held-out espeak-ng utterances with truth word
spans, and real recordings with their transcripts (Debian asterisk-core-sounds-en-wav, CC-BY-SA-3.0;
pocketsphinx-testdata LibriVox utterances, public domain).

    python tools/speech/make_test_data.py [OUT_DIR]
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from espeak_synth import Espeak  # noqa: E402
from make_dataset import _truth  # noqa: E402

SYNTH = [
    ("en-us-nyc+m6", 160, "Please hold while we connect your call to the next available agent."),
    ("en-gb-x-gbcwmd+f5", 190, "The quick brown fox jumps over the lazy dog near the river bank."),
    ("en-us-nyc+klatt4", 140, "He might even have been made amiable himself."),
    ("en-gb-x-gbcwmd", 210, "Seven large boxes arrived this morning, and nobody signed for them."),
]
ASTERISK = ["agent-alreadyon", "conf-onlyperson"]
LIBRIVOX = ["sense_and_sensibility_01_austen_64kb-0880", "sense_and_sensibility_01_austen_64kb-0930"]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/data/speech")
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    es = Espeak()
    for i, (voice, rate, text) in enumerate(SYNTH):
        u = es.synth(text, voice, rate, 50, 50)
        st, en = _truth(text, u.words)
        x = resample_poly(u.audio.astype(np.float64), 320, 441)
        lead = 0.3
        x = np.concatenate([np.zeros(int(lead * 16000)), x, np.zeros(4000)])
        name = f"espeak_{i}"
        sf.write(out / f"{name}.wav", (x / np.abs(x).max() * 0.8 * 32767).astype(np.int16), 16000)
        manifest.append({"audio": f"{name}.wav", "text": text, "kind": "espeak", "voice": voice, "rate_wpm": rate,
                         "word_start_s": [None if np.isnan(v) else round(v + lead, 5) for v in st],
                         "word_end_s": [None if np.isnan(v) else round(v + lead, 5) for v in en]})
    core = gzip.open("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz", "rt", errors="replace").read()
    for name in ASTERISK:
        m = re.search(rf"^{re.escape(name)}: (.*)$", core, re.M)
        shutil.copy(f"/usr/share/asterisk/sounds/en/{name}.wav", out / f"{name}.wav")
        manifest.append({"audio": f"{name}.wav", "text": m.group(1).strip(), "kind": "asterisk"})
    tr = Path("/usr/share/pocketsphinx/test/data/librivox/transcription").read_text()
    for name in LIBRIVOX:
        m = re.search(rf"<s> (.*) </s> \({re.escape(name)}\)", tr)
        shutil.copy(f"/usr/share/pocketsphinx/test/data/librivox/{name}.wav", out / f"{name}.wav")
        manifest.append({"audio": f"{name}.wav", "text": m.group(1).strip(), "kind": "librivox"})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "SOURCES.md").write_text(
        "# Test audio\n\n- `espeak_*.wav`: synthesized by espeak-ng with held-out voices (tools/speech/make_test_data.py);"
        " truth word spans from espeak-ng phoneme events in manifest.json.\n"
        "- `agent-alreadyon.wav`, `conf-onlyperson.wav`: Asterisk core sounds (Debian asterisk-core-sounds-en-wav),"
        " CC-BY-SA-3.0, Allison Smith / Digium.\n"
        "- `sense_and_sensibility_*.wav`: LibriVox recordings (public domain) from Debian pocketsphinx-testdata.\n"
    )
    print(f"wrote {len(manifest)} items to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
