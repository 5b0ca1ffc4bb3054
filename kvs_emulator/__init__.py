"""A local Amazon Kinesis Video Streams for tests, benchmarks and the demo.

Real HTTP, the real AWS wire protocol (rest-json, SigV4) and real H.264 media, so
boto3 talks to it unchanged through ``endpoint_url``. See README.md, "The emulator".
"""
