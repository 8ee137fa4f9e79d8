#!/bin/sh
# c-array.sh NAME FILE [nul] - print FILE as `static const unsigned char NAME[] = {...};`
#
# The byte arrays of the files compiled into ember (scripts/embed-web.sh,
# btf-archive/btfgen.sh embed).  With "nul", a 0 byte follows the contents
# (the web assets are served as strings too).
set -eu
echo "static const unsigned char $1[] = {"
od -An -v -tx1 "$2" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
[ "${3:-}" = nul ] && echo "0x00};" || echo "};"
