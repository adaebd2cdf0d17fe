"""Where the agent keeps things under its base directory (see store.py for the config side)."""

CONF = "conf"  # symlink to the active version
RUN = "run"  # sockets, pid files, logs
DIGEST_FILE = ".digest"  # in a version directory: the controller's digest of the bundle
HAPROXY_SOCK = "haproxy.sock"
HAPROXY_PID = "haproxy.pid"  # the serving daemon, published with one rename
HAPROXY_LAUNCH_PID = "haproxy.launch.pid"  # haproxy -p: truncated while a launcher runs
HAPROXY_SERVING = "haproxy.serving"  # "<pid> <config id>" once that daemon answers
# The worker's UDP/SCTP check results for the supervisor's next heartbeat.
UDP_STATUS_FILE = "udp-heartbeat.json"
