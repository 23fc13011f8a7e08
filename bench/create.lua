-- One valid, authorized create, sent by every wrk connection (same request for every server).
wrk.method = "POST"
wrk.body = '{"url": "https://filesystem.site/cdn/20251030/javYrU4etHVFDqg8by7mViTWHlMOZy.mp4", "timestamps": "1,3"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
