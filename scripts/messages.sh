#!/usr/bin/env bash
# Translations (Django i18n over GNU gettext). English is the source language; the
# catalogue of each other language is locale/<lang>/LC_MESSAGES/django.po (committed).
#   bash scripts/messages.sh update    re-extract every marked string from the Python code and
#                                      the templates into the .po files; new ones come in empty
#   bash scripts/messages.sh compile   .po -> .mo, which the running site reads (built, not committed)
# Needs the Debian package gettext (xgettext, msgmerge, msgfmt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"
LANGS=(ru)
IGNORE=(--ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=docs --ignore=scripts
        --ignore=test-artifacts --ignore=node_modules)

command -v msgfmt >/dev/null || { echo "msgfmt not found: install the Debian package gettext" >&2; exit 1; }
case "${1:-}" in
    update)
        # File names without line numbers: the catalogue changes only when strings do.
        "$PY" manage.py makemessages "${LANGS[@]/#/--locale=}" --add-location=file --no-obsolete "${IGNORE[@]}"
        ;;
    compile)
        "$PY" manage.py compilemessages "${LANGS[@]/#/--locale=}" "${IGNORE[@]}"
        ;;
    *)
        sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
esac
