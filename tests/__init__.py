"""Tests for the Kinesis Video Streams integration and its emulator."""
