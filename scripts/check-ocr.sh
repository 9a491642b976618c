#!/usr/bin/env bash
# Says whether Tesseract and the language data of the default RAG_OCR_LANGUAGES (and Arabic)
# are installed; exits 1, naming what is missing and the command that installs it, if not.
# Debian packages, listed in scripts/ocr-packages.txt (also read by .ci/run and the Dockerfile).
set -uo pipefail
cd "$(dirname "$0")/.."

packages=$(tr '\n' ' ' < scripts/ocr-packages.txt)
if ! command -v tesseract > /dev/null; then
  echo "OCR: Tesseract is missing, so scans and images fail with ocr_unavailable;" \
    "install it with: sudo apt-get install $packages" >&2
  exit 1
fi
installed=$(tesseract --list-langs 2> /dev/null | tail -n +2)
missing=()
for package in $(grep -v '^tesseract-ocr$' scripts/ocr-packages.txt); do
  language=${package#tesseract-ocr-}
  grep -qx "${language//-/_}" <<< "$installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "OCR: Tesseract lacks language data; install it with:" \
    "sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "OCR: $(tesseract --version 2>&1 | head -n 1), languages:" $installed
