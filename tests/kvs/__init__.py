"""Tests of the async Kinesis Video client library (kvs/), against the emulator."""
