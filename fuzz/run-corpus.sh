#!/bin/sh
# make check: every fuzz target over its seed corpus.
set -e
dir="${abs_top_srcdir:?}/fuzz/corpus/decode"
exec "${top_builddir:-.}/fuzz/decode-run" "$dir"/*
