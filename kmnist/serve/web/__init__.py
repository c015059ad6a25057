"""kmnist-serve's HTTP side: the REST app and what a browser meets.

app        the REST app: kmnist's routes before kserve's, limits, one-line errors
address    the host and ports: checked free before TensorFlow loads, written into URLs
cors       CORS for --cors_allowed_origins, as the Fetch standard asks
tls        --ssl_certfile / --ssl_keyfile: https and gRPC over TLS, checked first
page       the drawing page: a drawing prepared as kmnist-predict prepares a picture
on_device  the page's "on this device" mode: its service worker, the served version's own
           TFLite files (the int8 bundle the page runs with LiteRT.js, static/vendor/)
static/    the page's files
"""
