"""Names both sides of the agent API agree on: bundle files and HAProxy's environment.

Key choice: a module without imports, so that the amphora's resident supervisor can use these
names without loading the typed API helpers of ``lbaas.wire.agent_api``.
"""

AGENT_PORT = 9443
# The file HAProxy is started with; every bundle must carry it.
HAPROXY_CFG = "haproxy.cfg"
# Present only for ACTIVE_STANDBY amphorae: the agent then runs keepalived with it.
KEEPALIVED_CONF = "keepalived.conf"
# Present only while a BACKUP takes a drained MASTER's VIP over: nftables rules the agent loads
# (``nft -f``) before keepalived re-reads its config, and removes when a bundle lacks the file.
HANDOVER_NFT = "handover.nft"
# Environment variables the agent sets for HAProxy (usable as "${...}" in haproxy.cfg).
ENV_RUN_DIR = "LBAAS_RUN_DIR"
ENV_CONF_DIR = "LBAAS_CONF_DIR"
# The empty directory (root-owned, 0555) in the run directory HAProxy chroots into; the rendered
# ``chroot "${LBAAS_RUN_DIR}/haproxy-chroot"`` names it too (render.haproxy.CHROOT_DIR).
HAPROXY_CHROOT = "haproxy-chroot"
