"""Tests of the Home Assistant integration, against the KVS emulator."""
