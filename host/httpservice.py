"""A ThreadingHTTPServer on its own daemon thread, as the depot and the back office run
theirs: `start()` (returns self; port 0 = ephemeral, the real port is read back), `.url`,
`stop()`. Subclasses name the thread and hand the handler its state in `_attach`."""

import threading
from http.server import ThreadingHTTPServer


class HTTPService:
    thread_name = "http"

    def __init__(self, handler, host="127.0.0.1", port=0):
        self._handler = handler
        self.host, self.port = host, port
        self.httpd = None
        self._thread = None

    def _attach(self, httpd):
        """Put what the request handler reads (self.server.<name>) on the server."""

    def start(self):
        self.httpd = ThreadingHTTPServer((self.host, self.port), self._handler)
        self.httpd.daemon_threads = True
        self._attach(self.httpd)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name=self.thread_name)
        self._thread.start()
        return self

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self._thread.join(timeout=10)
            self.httpd = None
