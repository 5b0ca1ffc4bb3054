"""Custom integrations (Home Assistant loads kinesis_video from here)."""
