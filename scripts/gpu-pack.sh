#!/usr/bin/env bash
# Prepare, HERE, what a GPU lease needs that the device machine lacks (it has PyTorch, numpy and
# Pillow, but no espeak-ng and no ../shared): .gpu/ (git-ignored) holds
#   espeak/   espeak-ng and its data, extracted from the pinned Debian packages (apt-get download),
#   lib/      the shared libraries espeak-ng links (pcaudio, pulse, sndfile, ...), copied from
#             this machine, minus glibc itself (they need GLIBC_2.34 at most),
#   shared/   the face photos and recordings of ../shared/data that synthesis reads.
# Idempotent; ~20 MB carried (.gpu/debs stays here). Then run scripts/gpu-train.sh through the device tool (see its header).
set -euo pipefail
cd "$(dirname "$0")/.."
G=.gpu
PKGS="espeak-ng espeak-ng-data libespeak-ng1 libpcaudio0 libsonic0"
mkdir -p $G/debs $G/lib $G/shared/data
for p in $PKGS; do
  v=$(dpkg-query -W -f='${Version}' "$p")   # the version synthesis ran with here
  ls $G/debs/"${p}"_*.deb >/dev/null 2>&1 || (cd $G/debs && apt-get download -q "$p=$v" 2>/dev/null)
done
if [ ! -x $G/espeak/usr/bin/espeak-ng ]; then
  rm -rf $G/espeak
  for d in $G/debs/*.deb; do dpkg -x "$d" $G/espeak; done
fi
# synthesis draws English voices only (training/synth/speech.py BASE_VOICES): the other languages'
# dictionaries (~10 MB) would only eat into the call's 64 MiB
find $G/espeak -name '*_dict' ! -name 'en_dict' -delete
rm -rf $G/espeak/usr/share/doc $G/espeak/usr/share/man
E=$G/espeak
for l in $(ldd $E/usr/bin/espeak-ng $E/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1 | awk '/=>/ {print $3}' | sort -u); do
  case $(basename "$l") in libc.so*|libm.so*|ld-linux*|libpthread*|libdl.so*|librt.so*) ;; *) cp -Lu "$l" $G/lib/ ;; esac
done
cp -ru ../shared/data/faces ../shared/data/speech $G/shared/data/
# check: the extracted espeak-ng, on the copied libraries, speaks exactly as the installed one
env LD_LIBRARY_PATH=$E/usr/lib/x86_64-linux-gnu:$G/lib ESPEAK_DATA_PATH=$E/usr/lib/x86_64-linux-gnu \
  $E/usr/bin/espeak-ng -v en-us+m3 -w /tmp/gpu-pack-a.wav "seven green apples"
espeak-ng -v en-us+m3 -w /tmp/gpu-pack-b.wav "seven green apples"
cmp -s /tmp/gpu-pack-a.wav /tmp/gpu-pack-b.wav || { echo "gpu-pack: the packed espeak-ng differs from the installed one" >&2; exit 1; }
echo "gpu-pack: $(du -sh $G | cut -f1) in $G"
