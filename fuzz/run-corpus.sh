#!/bin/sh
# make check: every fuzz target over its seed corpus.
set -e
corpus="${abs_top_srcdir:?}/fuzz/corpus"
"${top_builddir:-.}/fuzz/decode-run" "$corpus/decode"/*
"${top_builddir:-.}/fuzz/virtio-run" "$corpus/virtio"/*
"${top_builddir:-.}/fuzz/pci-run" "$corpus/pci"/*
